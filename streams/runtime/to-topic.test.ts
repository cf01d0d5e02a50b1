import { EMPTY, firstValueFrom, lastValueFrom, of, throwError, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { toTopicRaw } from './to-topic.js';

describe('toTopicRaw', () => {
  it('turns nothing into nothing', async () => {
    expect(await lastValueFrom(EMPTY.pipe(toTopicRaw('t'), toArray()))).toEqual([]);
  });

  it('addresses each value to the topic, keeping key, headers and timestamp', async () => {
    const outputs = await lastValueFrom(
      of({ key: 'a', value: 'one', headers: { h: '1' } }, { key: null, value: null, timestamp: 5 }).pipe(toTopicRaw('t'), toArray()),
    );
    expect(outputs).toEqual([
      { topic: 't', key: 'a', value: Buffer.from('one'), headers: { h: '1' } },
      { topic: 't', key: null, value: null, timestamp: 5 },
    ]);
  });

  it('passes an upstream error on', async () => {
    await expect(firstValueFrom(throwError(() => new Error('upstream')).pipe(toTopicRaw('t')))).rejects.toThrow('upstream');
  });
});
