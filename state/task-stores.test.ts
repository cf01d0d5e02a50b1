import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../common/logger.js';
import { CacheBudget } from './cache-budget.js';
import type { readChangelogPartition } from './changelog.js';
import type { KeyValueStore } from './key-value-store.js';
import { RocksDatabase } from './rocksdb.js';
import { int64Serde } from './serde.js';
import { CHECKPOINT_INTERVAL_RECORDS, TaskStores } from './task-stores.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A changelog partition in memory: what the commits' transactions wrote, read back by restores. */
function memoryChangelog() {
  const log: { key: Buffer; value: Buffer | null }[] = [];
  let restoredFrom: bigint[] = [];
  const read: typeof readChangelogPartition = async (_kafka, _topic, _partition, fromOffset, apply) => {
    restoredFrom.push(fromOffset);
    for (let offset = Number(fromOffset); offset < log.length; offset++) {
      const record = log[offset];
      if (record) await apply(record.key, record.value, String(offset));
    }
    return { records: log.length - Number(fromOffset), endOffset: String(log.length), seconds: 0 };
  };
  return {
    log,
    read,
    restores: () => {
      const taken = restoredFrom;
      restoredFrom = [];
      return taken;
    },
  };
}

async function checkpointIn(dir: string): Promise<string> {
  return (JSON.parse(await fs.readFile(path.join(dir, 'counts', 'checkpoint.json'), 'utf8')) as { offset: string }).offset;
}

/** One key-value store of counts, its changelog kept in memory. */
function openStores(dir: string, changelog: ReturnType<typeof memoryChangelog>): Promise<TaskStores> {
  return TaskStores.open({
    specs: [{ name: 'counts', kind: 'key-value', serde: int64Serde }],
    dir,
    partition: 0,
    changelogTopic: () => 'counts-changelog',
    kafka: undefined as never,
    readChangelog: changelog.read,
    logger: silentLogger(),
  });
}

describe('TaskStores stores', () => {
  it("gives a key-value store its spec's heldBeside: what a value holds beside it counts in the cache budget", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-stores-'));
    dirs.push(dir);
    const budget = new CacheBudget(1 << 20);
    const stores = await TaskStores.open({
      specs: [{ name: 'counts', kind: 'key-value', serde: int64Serde, heldBeside: () => 1_000 }],
      dir,
      partition: 0,
      changelogTopic: () => 'counts-changelog',
      kafka: undefined as never,
      readChangelog: memoryChangelog().read,
      logger: silentLogger(),
      cacheBudget: budget,
    });
    try {
      stores.store<KeyValueStore<number>>('counts').put('k', 7);
      stores.freeze();
      // The key's byte, the value's 8, and the 1,000 beside it.
      expect(budget.usedBytes).toBe(1 + 8 + 1_000);
    } finally {
      await stores.close();
    }
  });
});

describe('TaskStores checkpoints', () => {
  it('writes the checkpoint file every 10,000 changelog records and on close; a restore from an older one ends in the same state', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-stores-'));
    dirs.push(dir);
    const changelog = memoryChangelog();
    const open = () => openStores(dir, changelog);

    let stores = await open();
    expect(await checkpointIn(dir)).toBe('0');
    const expected = new Map<string, number>();
    /** One commit: a write per key, its changelog records appended, then committed locally. */
    const commit = async (keys: number, round: number) => {
      const counts = stores.store<KeyValueStore<number>>('counts');
      for (let key = 0; key < keys; key++) {
        counts.put(`k${key}`, round * 1_000 + key);
        expected.set(`k${key}`, round * 1_000 + key);
      }
      for (const record of stores.freeze()) changelog.log.push({ key: record.key, value: record.value });
      await stores.commitLocal(new Map([['counts-changelog', BigInt(changelog.log.length)]]));
    };
    // 12 commits of 900 records: the file moves once the changelog is 10,000 past it (at 10,800).
    const written: string[] = [];
    for (let round = 1; round <= 12; round++) {
      await commit(900, round);
      written.push(await checkpointIn(dir));
    }
    expect(Number(CHECKPOINT_INTERVAL_RECORDS)).toBe(10_000);
    expect(written).toEqual(['0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '10800']);
    await commit(10, 13);
    expect(await checkpointIn(dir)).toBe('10800');
    // Closing writes the file at what RocksDB holds: the next open restores nothing.
    await stores.close();
    expect(await checkpointIn(dir)).toBe(String(changelog.log.length));
    changelog.restores();
    stores = await open();
    expect(changelog.restores()).toEqual([BigInt(changelog.log.length)]);
    const read = async () => Object.fromEntries(await stores.store<KeyValueStore<number>>('counts').range());
    expect(await read()).toEqual(Object.fromEntries(expected));

    // A crash leaves the file behind RocksDB (here: at 0, under every value written since): the
    // restore replays the changelog from there over the newer state, and ends where it was.
    await commit(900, 14);
    await stores.close();
    await fs.writeFile(path.join(dir, 'counts', 'checkpoint.json'), JSON.stringify({ offset: '0' }));
    stores = await open();
    expect(changelog.restores()).toEqual([0n]);
    expect(await read()).toEqual(Object.fromEntries(expected));
    expect(await checkpointIn(dir)).toBe(String(changelog.log.length));
    await stores.close();
  });

  it('writes commits to RocksDB unsynced and moves the checkpoint file only after a sync of its log', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-stores-'));
    dirs.push(dir);
    const changelog = memoryChangelog();
    const stores = await openStores(dir, changelog);
    // Spies call through: RocksDB is written as without them.
    const write = vi.spyOn(RocksDatabase.prototype, 'write');
    const syncWal = vi.spyOn(RocksDatabase.prototype, 'syncWal');
    const commit = async (keys: number, round: number) => {
      const counts = stores.store<KeyValueStore<number>>('counts');
      for (let key = 0; key < keys; key++) counts.put(`k${key}`, round * 1_000 + key);
      for (const record of stores.freeze()) changelog.log.push({ key: record.key, value: record.value });
      await stores.commitLocal(new Map([['counts-changelog', BigInt(changelog.log.length)]]));
    };
    for (let round = 1; round <= 12; round++) await commit(900, round);
    const writes = write.mock.calls.map(([, options]) => options?.sync);
    // Twelve commits, each one unsynced write; one sync, for the checkpoint file at 10,800.
    expect(writes.filter((sync) => sync === false)).toHaveLength(12);
    expect(syncWal).toHaveBeenCalledTimes(1);
    expect(writes.filter((sync) => sync === true)).toHaveLength(1);
    expect(await checkpointIn(dir)).toBe('10800');

    // A sync that fails once: the commit fails, and the file never moves again in this process, not
    // at the next interval nor on close, though syncs would succeed again (the kernel may have
    // dropped the failed pages and marked them clean).
    syncWal.mockRejectedValueOnce(new Error('disk gone'));
    const failures: unknown[] = [];
    for (let round = 13; round <= 25; round++) await commit(900, round).catch((error: unknown) => failures.push(error));
    expect(failures).toHaveLength(2);
    expect(String(failures[0])).toMatch(/disk gone/);
    expect(String(failures[1])).toMatch(/failed to sync earlier/);
    expect(await checkpointIn(dir)).toBe('10800');
    await stores.close();
    expect(await checkpointIn(dir)).toBe('10800');
  });
});
