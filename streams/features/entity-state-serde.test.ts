import { describe, expect, it } from 'vitest';
import type { EntityState } from './engine.js';
import type { EntityHead, HistorySegment } from './entity-history.js';
import { entityStoreSerde, EntityStateFormatError } from './entity-state-serde.js';

const serde = entityStoreSerde();
const segmentOf = (state: EntityState): HistorySegment => ({ kind: 'segment', events: state.events });
const headOf = (state: EntityState, segments = [4, 9], nextSegment = 10): EntityHead => ({
  kind: 'head',
  newest: state.newest,
  latest: state.latest,
  segments,
  nextSegment,
  trim: 3,
});

function state(): EntityState {
  return {
    newest: 1_700_000_000_123,
    events: [
      { t: 1_700_000_000_000, seq: 0, newest: null, v: { amount: 12.5, merchant: 'café ☕', country: null } },
      { t: 1_700_000_000_123, seq: 7, newest: 1_700_000_000_000, v: { amount: -0, merchant: '', country: 'DE' } },
      { t: 1_700_000_000_100, seq: 9, newest: 1_700_000_000_123, v: { amount: Number.NaN, merchant: 'x'.repeat(100_000), country: null } },
    ],
    latest: {
      spend_1h: {
        view: 'spend_1h',
        version: 3,
        entity: 'card-𝟙',
        eventId: 'transactions:t-1',
        eventTime: 1_700_000_000_123,
        sequence: 7,
        windowStart: 1_699_999_996_523,
        windowEnd: 1_700_000_000_123,
        values: { n: 2, total: 12.5, mean: null, spread: 0.1 + 0.2 },
      },
    },
  };
}

describe('entity state serde', () => {
  it('reads back what it wrote, every number bit for bit and every key in order', () => {
    const original = state();
    const segment = serde.deserialize(serde.serialize(segmentOf(original)));
    const head = serde.deserialize(serde.serialize(headOf(original)));
    expect(segment).toEqual(segmentOf(original));
    expect(head).toEqual(headOf(original));
    if (segment.kind !== 'segment' || head.kind !== 'head') throw new Error('wrong kinds');
    expect(Object.is(segment.events[1]?.v.amount, -0)).toBe(true);
    expect(Number.isNaN(segment.events[2]?.v.amount)).toBe(true);
    expect(Object.keys(head.latest.spend_1h?.values ?? {})).toEqual(['n', 'total', 'mean', 'spread']);
    expect(head.latest.spend_1h?.values.spread).toBe(0.1 + 0.2);
    expect(Object.keys(segment.events[0]?.v ?? {})).toEqual(['amount', 'merchant', 'country']);
  });

  it('writes empty values and values larger than its scratch buffer', () => {
    const empty: EntityState = { newest: null, events: [], latest: {} };
    expect(serde.deserialize(serde.serialize(segmentOf(empty)))).toEqual(segmentOf(empty));
    expect(serde.deserialize(serde.serialize(headOf(empty, [], 0)))).toEqual(headOf(empty, [], 0));
    const big: HistorySegment = {
      kind: 'segment',
      events: Array.from({ length: 5_000 }, (_, index) => ({
        t: index,
        seq: index,
        newest: index - 1,
        v: { amount: index / 3, merchant: `m${index}` },
      })),
    };
    const bytes = serde.serialize(big);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    expect(serde.deserialize(bytes)).toEqual(big);
    // The scratch buffer is reused: an earlier result is not overwritten by a later one.
    const first = serde.serialize(headOf(state()));
    const snapshot = Buffer.from(first);
    serde.serialize(big);
    expect(first.equals(snapshot)).toBe(true);
  });

  it('reads a whole state of the earlier binary version as a head with its history inline', () => {
    // Written by the version that stored each entity's state whole (format 1).
    const bytes = Buffer.from(
      'AQEAsIdW/rx4QgMAAAAGAAAAYW1vdW50CAAAAG1lcmNoYW50BwAAAGNvdW50cnkCAAAAAACAVv68eEIAAAAAAAAAAAABAAAAAAAAKUACBQAAAGNhZsOpAACwh1b+vHhCAAAAAAAAHEABAACAVv68eEIBAAAAAAAAAIACAAAAAAICAAAAREUBAAAACAAAAHNwZW5kXzFoCAAAAHNwZW5kXzFoAAAAAAAACEAGAAAAY2FyZC0xAwAAAHQtMQCwh1b+vHhCAAAAAAAAHEAAsKZV/rx4QgCwh1b+vHhCAwAAAAEAAABuAQAAAAAAAABABQAAAHRvdGFsAQAAAAAAAClABAAAAG1lYW4A',
      'base64',
    );
    expect(serde.deserialize(bytes)).toEqual({
      kind: 'head',
      newest: 1_700_000_000_123,
      segments: [],
      nextSegment: 0,
      trim: 0,
      inline: [
        { t: 1_700_000_000_000, seq: 0, newest: null, v: { amount: 12.5, merchant: 'café', country: null } },
        { t: 1_700_000_000_123, seq: 7, newest: 1_700_000_000_000, v: { amount: -0, merchant: '', country: 'DE' } },
      ],
      latest: {
        spend_1h: {
          view: 'spend_1h',
          version: 3,
          entity: 'card-1',
          eventId: 't-1',
          eventTime: 1_700_000_000_123,
          sequence: 7,
          windowStart: 1_699_999_996_523,
          windowEnd: 1_700_000_000_123,
          values: { n: 2, total: 12.5, mean: null },
        },
      },
    });
  });

  it('is smaller than the JSON form', () => {
    const original = state();
    original.events[2] = { t: 3, seq: 3, newest: 2, v: { amount: 1234.5678, merchant: 'm', country: null } };
    const bytes = serde.serialize(segmentOf(original)).length + serde.serialize(headOf(original)).length;
    expect(bytes).toBeLessThan(Buffer.byteLength(JSON.stringify(original)));
  });

  it('reads the JSON form earlier versions stored, as a head with its history inline', () => {
    const json = {
      n: 20,
      f: ['amount', 'merchant'],
      e: [
        [10, 0, null, 1.5, 'a'],
        [20, 1, 10, null, 'b'],
      ],
      l: {
        v: {
          view: 'v',
          version: 1,
          entity: 'c',
          eventId: 'e',
          eventTime: 20,
          sequence: 1,
          windowStart: 0,
          windowEnd: 20,
          values: { n: 2 },
        },
      },
    };
    expect(serde.deserialize(Buffer.from(JSON.stringify(json)))).toEqual({
      kind: 'head',
      newest: 20,
      segments: [],
      nextSegment: 0,
      trim: 0,
      inline: [
        { t: 10, seq: 0, newest: null, v: { amount: 1.5, merchant: 'a' } },
        { t: 20, seq: 1, newest: 10, v: { amount: null, merchant: 'b' } },
      ],
      latest: json.l,
    });
    expect(() => serde.deserialize(Buffer.from('{"x":1}'))).toThrow(EntityStateFormatError);
  });

  it('rejects bytes that are not a value it wrote', () => {
    const bytes = serde.serialize(headOf(state()));
    expect(() => serde.deserialize(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
    expect(() => serde.deserialize(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/after the entity state/);
    expect(() => serde.deserialize(Buffer.from([9, 0, 0]))).toThrow(/unknown entity state format/);
    const badTag = Buffer.from(bytes);
    badTag[1] = 7;
    expect(() => serde.deserialize(badTag)).toThrow(/bad number tag/);
  });
});
