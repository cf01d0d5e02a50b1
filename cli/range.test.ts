import { describe, expect, it } from 'vitest';
import { rangeOf } from './range.js';

describe('range options', () => {
  it('read --from/--to as event time by default, ISO dates or epoch ms', () => {
    expect(rangeOf({ from: '2001-01-10', to: '979171200000' })).toEqual({
      eventTime: { from: Date.UTC(2001, 0, 10), to: Date.UTC(2001, 0, 9) + 2 * 86_400_000 },
    });
  });

  it('read them as Kafka record time with --record-time, and offsets always as offsets', () => {
    expect(rangeOf({ from: '2001-01-10', recordTime: true, toOffsets: '0:10,2:30' })).toEqual({
      record: { fromTime: Date.UTC(2001, 0, 10), toOffsets: { 0: '10', 2: '30' } },
    });
  });

  it('is empty without options, and refuses nonsense', () => {
    expect(rangeOf({})).toEqual({});
    expect(() => rangeOf({ from: 'yesterday' })).toThrow(/--from takes epoch milliseconds or an ISO time/);
    expect(() => rangeOf({ from: '2001-01-11', to: '2001-01-10' })).toThrow(/--to .* must come after --from/);
    expect(() => rangeOf({ fromOffsets: '0-10' })).toThrow(/partition:offset pairs/);
  });
});
