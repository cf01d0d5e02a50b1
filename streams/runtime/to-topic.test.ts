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

describe('produce requests of a commit', () => {
  it('split large commits so that no request (and no partition batch) exceeds the bound', async () => {
    const { requestChunks } = await import('./committer.js');
    const big = Array.from({ length: 10 }, (_, index) => ({ topic: 't', key: `k${index}`, value: Buffer.alloc(300) }));
    const chunks = requestChunks(big, 1_000);
    expect(chunks.flat()).toEqual(big);
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.reduce((sum, record) => sum + (record.value?.length ?? 0), 0)).toBeLessThanOrEqual(1_000);
    expect(requestChunks([])).toEqual([]);
  });
});
