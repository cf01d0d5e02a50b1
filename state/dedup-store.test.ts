import { describe, expect, it } from 'vitest';
import { InMemoryDedupStore } from './dedup-store.js';

describe('InMemoryDedupStore', () => {
  it('reports an id seen within the TTL as a duplicate', () => {
    const store = new InMemoryDedupStore(1_000, 100);
    expect(store.seen('a', 0)).toBe(false);
    expect(store.seen('a', 500)).toBe(true);
    expect(store.seen('b', 500)).toBe(false);
  });

  it('treats an id seen longer ago than the TTL as new', () => {
    const store = new InMemoryDedupStore(1_000, 100);
    store.seen('a', 0);
    expect(store.seen('a', 1_001)).toBe(false);
  });

  it('expires by watermark and bounds its size, oldest first', () => {
    const store = new InMemoryDedupStore(1_000, 3);
    for (const [id, time] of [['a', 0], ['b', 10], ['c', 2_000], ['d', 2_001]] as const) store.seen(id, time);
    expect(store.size).toBe(3);
    expect(store.seen('a', 20)).toBe(false); // evicted by the bound
    store.expire(2_500);
    expect(store.size).toBe(2);
    expect(store.seen('c', 2_600)).toBe(true);
  });
});
