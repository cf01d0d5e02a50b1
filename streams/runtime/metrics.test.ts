import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { CacheBudget, RocksDatabase } from '../../state/index.js';
import { watchRocksDb, watchStateCache } from './metrics.js';

/** A metric's value in the registry's exposition text. */
async function valueOf(text: Promise<string>, name: string): Promise<number> {
  const line = (await text).split('\n').find((entry) => entry.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name}`);
  return Number(line.slice(name.length + 1));
}

describe('watchStateCache', () => {
  it("exports the budgets' bytes, bounds and evictions as they are at the scrape", async () => {
    const registry = createMetricsRegistry(false);
    const first = new CacheBudget(1_000);
    const second = new CacheBudget(500);
    watchStateCache(registry, first);
    watchStateCache(registry, second);
    watchStateCache(registry, first); // watched once, counted once
    first.adjust(300);
    second.adjust(20);
    first.noteEvicted(7);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_bytes')).toBe(320);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_max_bytes')).toBe(1_500);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_evicted_total')).toBe(7);
    first.adjust(-300);
    second.noteEvicted(5);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_bytes')).toBe(20);
    // A counter: each scrape adds what was evicted since the last one.
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_evicted_total')).toBe(12);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_evicted_total')).toBe(12);
    // A budget no longer watched leaves the gauges; the counter keeps its evictions.
    const third = new CacheBudget(100);
    const unwatch = watchStateCache(registry, third);
    third.adjust(40);
    third.noteEvicted(3);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_evicted_total')).toBe(15);
    unwatch();
    unwatch();
    second.noteEvicted(1);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_bytes')).toBe(20);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_max_bytes')).toBe(1_500);
    expect(await valueOf(registry.metrics(), 'sluice_state_cache_evicted_total')).toBe(16);
  });
});

describe('watchRocksDb', () => {
  it("exports RocksDB's memory by kind and the open databases, as they are at the scrape", async () => {
    const registry = createMetricsRegistry(false);
    watchRocksDb(registry);
    watchRocksDb(registry); // registered once: a second registration would throw
    const labelled = async (kind: string): Promise<number> => valueOf(registry.metrics(), `sluice_rocksdb_memory_bytes{kind="${kind}"}`);
    const openBefore = await valueOf(registry.metrics(), 'sluice_rocksdb_open_databases');
    const memtablesBefore = await labelled('memtables');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-rocks-metrics-'));
    const db = await RocksDatabase.open(path.join(dir, 'db'));
    try {
      await db.write([{ type: 'put', key: Buffer.from('k'), value: Buffer.alloc(512 * 1024, 7) }], { sync: false });
      expect(await valueOf(registry.metrics(), 'sluice_rocksdb_open_databases')).toBe(openBefore + 1);
      expect((await labelled('memtables')) - memtablesBefore).toBeGreaterThanOrEqual(512 * 1024);
      // Each kind is RocksDB's own figure of that kind (the properties are tested in state/).
      const memory = RocksDatabase.memory();
      expect(await labelled('block_cache')).toBe(memory.blockCache);
      expect(await labelled('table_readers')).toBe(memory.tableReaders);
    } finally {
      await db.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
    expect(await valueOf(registry.metrics(), 'sluice_rocksdb_open_databases')).toBe(openBefore);
  });
});
