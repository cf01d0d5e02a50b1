import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheBudget } from './cache-budget.js';
import { CachedBytesStore, NOT_LOADED } from './cached-store.js';
import { KeyValueStore } from './key-value-store.js';
import { StateStoreError } from './errors.js';
import { RocksDatabase, SYNC_KEY } from './rocksdb.js';
import { int64Serde, jsonSerde } from './serde.js';
import { WindowStore, decodeWindowKey, encodeWindowKey } from './window-store.js';

const opened: RocksDatabase[] = [];
const dirs: string[] = [];

async function database(): Promise<RocksDatabase> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-rocks-'));
  dirs.push(dir);
  const db = await RocksDatabase.open(path.join(dir, 'db'));
  opened.push(db);
  return db;
}

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

describe('RocksDatabase', () => {
  it("sums RocksDB's own memory figures over the databases open in the process, and stops counting a closed one", async () => {
    const before = RocksDatabase.openCount;
    const db = await database();
    expect(RocksDatabase.openCount).toBe(before + 1);
    const empty = RocksDatabase.memory().memtables;
    await db.write([{ type: 'put', key: Buffer.from('k'), value: Buffer.alloc(256 * 1024, 1) }], { sync: false });
    // The unflushed write is in the memtable: RocksDB counts its arena, at least the value's bytes.
    expect(RocksDatabase.memory().memtables - empty).toBeGreaterThanOrEqual(256 * 1024);
    // A second open of the same database fails (RocksDB's lock): not counted.
    await expect(RocksDatabase.open(db.location)).rejects.toThrow();
    expect(RocksDatabase.openCount).toBe(before + 1);
    await db.close();
    opened.splice(opened.indexOf(db), 1);
    expect(RocksDatabase.openCount).toBe(before);

    // Reopened, the write is in a table file (recovered from the WAL and flushed at open): reading it
    // fills the block cache, and the open table keeps its index and filter.
    const cacheBefore = RocksDatabase.memory().blockCache;
    const readersBefore = RocksDatabase.memory().tableReaders;
    const again = await RocksDatabase.open(db.location);
    opened.push(again);
    // Open: the table's index and filter are read, no data block yet.
    expect(RocksDatabase.memory().tableReaders).toBeGreaterThan(readersBefore);
    expect(RocksDatabase.memory().blockCache).toBe(cacheBefore);
    expect((await again.get(Buffer.from('k')))?.length).toBe(256 * 1024);
    expect(RocksDatabase.memory().blockCache).toBeGreaterThan(cacheBefore);
  });

  it('writes a batch of puts and deletes atomically, and refuses an empty key with a typed error, writing nothing', async () => {
    const db = await database();
    await db.write([
      { type: 'put', key: Buffer.from('a'), value: Buffer.from('1') },
      { type: 'put', key: Buffer.from('b'), value: Buffer.from('2') },
    ]);
    await db.write([
      { type: 'del', key: Buffer.from('a') },
      { type: 'put', key: Buffer.from('c'), value: Buffer.from('3') },
    ]);
    expect((await db.getMany([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')])).map((value) => value?.toString())).toEqual([
      undefined,
      '2',
      '3',
    ]);
    const refused = db.write([
      { type: 'put', key: Buffer.from('d'), value: Buffer.from('4') },
      { type: 'put', key: Buffer.alloc(0), value: Buffer.from('5') },
    ]);
    await expect(refused).rejects.toBeInstanceOf(StateStoreError);
    await expect(refused).rejects.toThrow(/empty/);
    expect(await db.get(Buffer.from('d'))).toBeUndefined();
  });

  it('syncs the log without a change any read sees: its key is none a key-value or window store writes', async () => {
    const db = await database();
    const keys = [Buffer.from('a'), Buffer.from('\u{10ffff}z'), encodeWindowKey(2 ** 40, 'k', 2 ** 52)];
    await db.write(
      keys.map((key) => ({ type: 'put' as const, key, value: Buffer.from('v') })),
      { sync: false },
    );
    await db.syncWal();
    const all = [];
    for await (const [key] of db.entries()) all.push(key.toString('hex'));
    expect(all).toEqual(keys.map((key) => key.toString('hex')).sort());
    // Above every key of ours: UTF-8 never holds 0xFF, and a window key's first byte is 0.
    for (const key of keys) expect(Buffer.compare(key, SYNC_KEY)).toBe(-1);
  });
});

describe('KeyValueStore over RocksDB with the write cache', () => {
  it('keeps its object cache within a byte budget shared by stores: least recently used clean entries go first', async () => {
    const budget = new CacheBudget(1_000);
    const bytesA = new CachedBytesStore(await database());
    const bytesB = new CachedBytesStore(await database());
    const a = new KeyValueStore(bytesA, jsonSerde<string>(), undefined, budget);
    const b = new KeyValueStore(bytesB, jsonSerde<string>(), undefined, budget);
    const value = 'v'.repeat(98); // 100 bytes serialized (with its quotes), plus the key's
    // Written (dirty) entries stay until their commit begins, whatever the budget.
    for (let index = 0; index < 12; index++) a.put(`k${index}`, value);
    expect(a.cachedCount).toBe(12);
    expect(budget.usedBytes).toBe(0);
    a.serializeDirty(); // sizes known now: 12 × 102–103 bytes > 1,000, so the oldest go
    await bytesA.persistNow();
    // 10 × 102 + 2 × 103 bytes: k0–k3 go (down to 90% of the budget), k4–k11 stay.
    expect(budget.usedBytes).toBe(818);
    expect(a.cachedBytes).toBe(budget.usedBytes);
    const cached = (): string[] => [...Array(12).keys()].map((index) => `k${index}`).filter((key) => a.peek(key) !== NOT_LOADED);
    expect(cached()).toEqual(['k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'k10', 'k11']);
    expect(budget.evictedEntries).toBe(4);
    // A hit makes k4 the most recently used (cached() peeked them all in order: k11 is last now).
    a.peek('k4');
    // Evicted entries read back from RocksDB; taking them beyond the budget evicts k5 and k6, not k4.
    expect(await a.get('k0')).toBe(value);
    expect(await a.get('k1')).toBe(value);
    expect(cached()).toEqual(['k0', 'k1', 'k4', 'k7', 'k8', 'k9', 'k10', 'k11']);
    expect(budget.evictedEntries).toBe(6);
    // The other store's reads share the budget: taking entries evicts its own least recently used.
    await bytesB.persistNow();
    for (let index = 0; index < 5; index++) b.put(`b${index}`, value);
    b.serializeDirty();
    await bytesB.persistNow();
    expect(budget.usedBytes).toBeLessThanOrEqual(1_000);
    expect(a.cachedBytes + b.cachedBytes).toBe(budget.usedBytes);
    // Discarding a store's cache (an abort, a closed task) gives its bytes back.
    a.discardCache();
    expect(budget.usedBytes).toBe(b.cachedBytes);
    b.discardCache();
    expect(budget.usedBytes).toBe(0);
  });

  it('over the budget, the stores used least recently give first: an idle store does not starve a busy one', async () => {
    const budget = new CacheBudget(1_000);
    const idle = new KeyValueStore(new CachedBytesStore(await database()), jsonSerde<string>(), undefined, budget);
    const bytes = new CachedBytesStore(await database());
    const busy = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    const value = 'v'.repeat(98);
    for (let index = 0; index < 8; index++) idle.put(`i${index}`, value);
    idle.serializeDirty();
    expect(idle.cachedBytes).toBe(816);
    for (let index = 0; index < 6; index++) busy.put(`b${index}`, value);
    busy.serializeDirty();
    await bytes.persistNow();
    // The idle store's entries went (down to 90% of the budget); the busy one keeps all of its own.
    expect(busy.cachedBytes).toBe(612);
    expect(idle.cachedBytes).toBeLessThanOrEqual(900 - 612);
    expect(budget.usedBytes).toBe(idle.cachedBytes + busy.cachedBytes);
    for (let index = 0; index < 6; index++) expect(busy.peek(`b${index}`)).toBe(value);
  });

  it("a prefetch's eviction spares the batch's keys that were cached already", async () => {
    const budget = new CacheBudget(350);
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    const value = 'v'.repeat(98); // 102 bytes with the key
    for (const key of ['k1', 'k2', 'k3', 'k4']) store.put(key, value);
    store.serializeDirty();
    await bytes.persistNow();
    store.discardCache();
    for (const key of ['k1', 'k2', 'k3']) await store.get(key); // k1 is the least recently used
    await store.prefetch(['k1', 'k4']); // k4's load goes beyond the budget: one entry must go
    const cached = ['k1', 'k2', 'k3', 'k4'].filter((key) => store.peek(key) !== NOT_LOADED);
    expect(cached).toEqual(['k1', 'k3', 'k4']);
  });

  it('counts what a written value holds beside its serialized form (heldBeside) in the budget, and evicts by it', async () => {
    const budget = new CacheBudget(1_000);
    const bytes = new CachedBytesStore(await database());
    // A value's memory beside it: 300 bytes for the long ones, none for the others.
    const beside = (value: string): number => (value.length > 50 ? 300 : 0);
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget, beside);
    store.put('small', 'v');
    store.put('big1', 'w'.repeat(98));
    store.serializeDirty(); // 'small': 5 + 3 bytes; 'big1': 4 + 100 + 300
    await bytes.persistNow();
    expect(store.cachedBytes).toBe(8 + 404);
    expect(budget.usedBytes).toBe(412);
    // Two more big ones go beyond the budget with what they hold beside them (1,220 bytes; by their
    // serialized bytes alone, 320): the least recently used entries go, down to 900.
    store.put('big2', 'x'.repeat(98));
    store.put('big3', 'y'.repeat(98));
    store.serializeDirty();
    await bytes.persistNow();
    expect(store.peek('small')).toBe(NOT_LOADED);
    expect(store.peek('big1')).toBe(NOT_LOADED);
    expect(store.cachedBytes).toBe(808);
    // Read back from RocksDB, a value holds nothing beside it yet: its serialized bytes count.
    expect(await store.get('big1')).toBe('w'.repeat(98));
    expect(store.cachedBytes).toBe(808 + 104);
    // Without a budget nothing is counted, beside or not.
    const unbounded = new KeyValueStore(new CachedBytesStore(await database()), jsonSerde<string>(), undefined, undefined, beside);
    unbounded.put('big', 'z'.repeat(98));
    unbounded.serializeDirty();
    expect(unbounded.cachedBytes).toBe(0);
  });

  it('a prefetch that lands after a newer write was committed never caches the older value', async () => {
    const budget = new CacheBudget(250);
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    store.put('a', 'a'.repeat(300)); // beyond the budget alone: its load evicts
    store.put('j', 'old');
    store.serializeDirty();
    await bytes.persistNow();
    store.discardCache();
    const prefetched = store.prefetch(['a', 'j']);
    // While RocksDB is read: j is written and handed to a commit (clean in the cache, newer than RocksDB's).
    store.put('j', 'new');
    store.serializeDirty();
    await prefetched;
    expect(await store.get('j')).toBe('new');
  });

  it('a get in flight while its key is written, handed to a commit and evicted reads again, never caching the older value', async () => {
    const budget = new CacheBudget(100);
    const db = await database();
    const bytes = new CachedBytesStore(db);
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    await db.write([{ type: 'put', key: Buffer.from('j'), value: jsonSerde<string>().serialize('old') }]);
    const reading = store.get('j');
    // While RocksDB is read: j is written and handed to a commit, then evicted (clean, least recently used).
    store.put('j', 'new');
    store.serializeDirty();
    store.put('big', 'x'.repeat(200));
    store.serializeDirty();
    expect(store.peek('j')).toBe(NOT_LOADED);
    expect(await reading).toBe('new');
    expect(store.peek('j')).toBe('new');
  });

  it('a get in flight while its key is written with cache: false and dropped reads again, never caching the older value', async () => {
    const db = await database();
    const bytes = new CachedBytesStore(db);
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, new CacheBudget(10_000));
    const old = jsonSerde<string>().serialize('old');
    await db.write([
      { type: 'put', key: Buffer.from('j'), value: old },
      { type: 'put', key: Buffer.from('p'), value: old },
    ]);
    const reading = store.get('j');
    const prefetching = store.prefetch(['p']);
    // While RocksDB is read: j and p are written and handed to a commit, which drops them from memory.
    store.put('j', 'new', { cache: false });
    store.put('p', 'new', { cache: false });
    store.serializeDirty();
    expect(store.peek('j')).toBe(NOT_LOADED);
    await prefetching;
    // The prefetch's older read is not cached: p is left to its get.
    expect(store.peek('p')).toBe(NOT_LOADED);
    expect(await store.get('p')).toBe('new');
    expect(await reading).toBe('new');
    expect(store.peek('j')).toBe('new');
  });

  it('a prefetch in flight while its key is written and evicted leaves the key to its get', async () => {
    const budget = new CacheBudget(100);
    const db = await database();
    const store = new KeyValueStore(new CachedBytesStore(db), jsonSerde<string>(), undefined, budget);
    await db.write([{ type: 'put', key: Buffer.from('j'), value: jsonSerde<string>().serialize('old') }]);
    const prefetched = store.prefetch(['j']);
    store.put('j', 'new');
    store.serializeDirty();
    store.put('big', 'x'.repeat(200));
    store.serializeDirty();
    await prefetched;
    expect(store.peek('j')).toBe(NOT_LOADED);
    expect(await store.get('j')).toBe('new');
  });

  it('past its entry limit of keys evicted during reads, a store discards every read in flight instead', async () => {
    const db = await database();
    const store = new KeyValueStore(new CachedBytesStore(db), jsonSerde<string>(), 2);
    await db.write([{ type: 'put', key: Buffer.from('x'), value: jsonSerde<string>().serialize('1') }]);
    const prefetched = store.prefetch(['x']);
    // Ten entries written and handed to a commit: beyond the limit of 2, the clean ones are evicted.
    for (let index = 0; index < 10; index++) store.put(`k${index}`, 'v');
    store.serializeDirty();
    await prefetched;
    expect(store.peek('x')).toBe(NOT_LOADED);
    expect(await store.get('x')).toBe('1');
  });

  it("an eviction of other keys while a prefetch reads RocksDB keeps the prefetch's values", async () => {
    const budget = new CacheBudget(100);
    const db = await database();
    const store = new KeyValueStore(new CachedBytesStore(db), jsonSerde<string>(), undefined, budget);
    await db.write([
      { type: 'put', key: Buffer.from('x'), value: jsonSerde<string>().serialize('1') },
      { type: 'put', key: Buffer.from('y'), value: jsonSerde<string>().serialize('2') },
    ]);
    expect(await store.get('y')).toBe('2');
    const prefetched = store.prefetch(['x']);
    store.put('big', 'x'.repeat(200));
    store.serializeDirty();
    expect(store.peek('y')).toBe(NOT_LOADED);
    await prefetched;
    // Before, any eviction in the store dropped every read in flight: x was read again by its get.
    expect(store.peek('x')).toBe('1');
  });

  it('a closed store caches nothing more and gives its bytes back, even for a read in flight', async () => {
    const budget = new CacheBudget(10_000);
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    store.put('a', 'x');
    store.serializeDirty();
    await bytes.persistNow();
    store.discardCache();
    const reading = store.get('a');
    store.close();
    expect(await reading).toBe('x');
    await store.prefetch(['a']);
    expect(store.peek('a')).toBe(NOT_LOADED);
    expect(budget.usedBytes).toBe(0);
  });

  it('written entries do not count until their commit serializes them, so they never hold the budget', async () => {
    const budget = new CacheBudget(1_000);
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    const value = 'v'.repeat(98);
    for (let index = 0; index < 8; index++) store.put(`k${index}`, value);
    store.serializeDirty();
    await bytes.persistNow();
    expect(budget.usedBytes).toBe(816);
    // Written again (dirty until the next freeze): not counted, so a read beside them is kept.
    for (let index = 0; index < 8; index++) store.put(`k${index}`, `${value}!`);
    expect(budget.usedBytes).toBe(0);
    store.put('other', value);
    store.serializeDirty();
    await bytes.persistNow();
    store.discardCache();
    for (let index = 0; index < 8; index++) store.put(`k${index}`, value);
    expect(await store.get('other')).toBe(value);
    expect(store.peek('other')).toBe(value);
    expect(budget.usedBytes).toBe(105);
  });

  it('drops a value written with cache: false once its commit serializes it, and reads it back from below', async () => {
    const budget = new CacheBudget(10_000);
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), undefined, budget);
    store.put('hot', 'h');
    store.put('gone', 'g');
    store.serializeDirty();
    store.put('cold', 'c', { cache: false });
    store.delete('gone', { cache: false });
    // Until the commit serializes them, they are in memory like any write.
    expect(store.peek('cold')).toBe('c');
    expect(store.peek('gone')).toBeUndefined();
    store.serializeDirty();
    expect(store.peek('hot')).toBe('h');
    expect(store.peek('cold')).toBe(NOT_LOADED);
    expect(store.peek('gone')).toBe(NOT_LOADED);
    expect(budget.usedBytes).toBe('hot'.length + '"h"'.length);
    // From the commit's pending writes, then from RocksDB.
    expect(await store.get('cold')).toBe('c');
    await bytes.persistNow();
    store.discardCache();
    expect(await store.get('cold')).toBe('c');
    expect(await store.get('gone')).toBeUndefined();
    // Written again with the cache: kept.
    store.put('cold', 'c2', { cache: false });
    store.put('cold', 'c3');
    store.serializeDirty();
    expect(store.peek('cold')).toBe('c3');
  });

  it('without a budget, keeps every entry up to its entry limit', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>(), 10);
    for (let index = 0; index < 12; index++) store.put(`k${index}`, 'v'.repeat(1_000));
    store.serializeDirty();
    await bytes.persistNow();
    expect(store.cachedCount).toBe(9);
    expect(store.cachedBytes).toBe(0);
    expect(await store.get('k0')).toBe('v'.repeat(1_000));
  });

  it('reads its own uncommitted writes, and RocksDB only gets them on flush', async () => {
    const db = await database();
    const bytes = new CachedBytesStore(db);
    const store = new KeyValueStore(bytes, int64Serde);
    store.put('a', 1);
    expect(await store.get('a')).toBe(1);
    expect(await db.get(Buffer.from('a'))).toBeUndefined();
    store.serializeDirty();
    expect(await db.get(Buffer.from('a'))).toBeUndefined();
    await bytes.persistNow();
    expect(int64Serde.deserialize((await db.get(Buffer.from('a')))!)).toBe(1);
  });

  it('discards uncommitted writes (an aborted transaction)', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, int64Serde);
    store.put('a', 1);
    store.serializeDirty();
    await bytes.persistNow();
    store.put('a', 2);
    store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    store.discardCache();
    bytes.discard();
    expect(await store.get('a')).toBe(1);
  });

  it('lists pending changes in last-write order, deletes as null (the changelog)', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, jsonSerde<string>());
    store.put('a', 'x');
    store.put('b', 'y');
    store.put('a', 'z');
    store.delete('b');
    store.serializeDirty();
    expect(bytes.pending().map((change) => [change.key.toString(), change.value?.toString() ?? null])).toEqual([
      ['a', '"z"'],
      ['b', null],
    ]);
  });

  it('range-scans committed and pending entries merged, in key order', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new KeyValueStore(bytes, int64Serde);
    store.put('user:2', 2);
    store.put('user:1', 1);
    store.put('other', 9);
    store.serializeDirty();
    await bytes.persistNow();
    store.put('user:3', 3);
    store.delete('user:2');
    expect(await store.range('user:')).toEqual([
      ['user:1', 1],
      ['user:3', 3],
    ]);
    expect((await store.range()).map(([key]) => key)).toEqual(['other', 'user:1', 'user:3']);
  });
});

describe('range scans while a commit in flight lands', () => {
  /**
   * The database with its scans held after their first read (so their RocksDB snapshot is taken)
   * until `release`: the task's processing scans a store while its previous commit persists the
   * frozen writes and drops that layer (the runtime overlaps the two).
   */
  function heldScans(db: RocksDatabase): { db: RocksDatabase; started: Promise<void>; release: () => void } {
    let release!: () => void;
    let markStarted!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const held = Object.create(db) as RocksDatabase;
    held.entries = async function* (range) {
      const inner = db.entries(range);
      const first = await inner.next();
      markStarted();
      await released;
      if (first.done) return;
      yield first.value;
      yield* inner;
    };
    return { db: held, started, release };
  }

  it('sees the frozen writes that were persisted after its snapshot (the performance join lost a window’s newest predictions)', async () => {
    const { db, started, release } = heldScans(await database());
    const bytes = new CachedBytesStore(db);
    const store = new KeyValueStore(bytes, int64Serde);
    // A window's predictions: most committed long ago, the newest ones in the commit now in flight.
    for (let id = 0; id < 226; id++) store.put(`p:fraud:0001715166000000:${String(id).padStart(4, '0')}`, id);
    store.serializeDirty();
    await bytes.persistNow();
    for (let id = 226; id < 231; id++) store.put(`p:fraud:0001715166000000:${String(id).padStart(4, '0')}`, id);
    store.serializeDirty();
    bytes.freeze();
    store.put('p:fraud:0001715166000000:0231', 231); // processed after the commit began
    // The window is made FINAL: its predictions are scanned while the commit in flight persists.
    const scan = store.range('p:fraud:0001715166000000:');
    await started;
    await bytes.persistFrozen();
    release();
    const entries = await scan;
    expect(entries.length).toBe(232);
    expect(entries.map(([, value]) => value)).toEqual(Array.from({ length: 232 }, (_, id) => id));
  });

  it('overlays the writes of the frozen commit on its snapshot, deletes included', async () => {
    const { db, started, release } = heldScans(await database());
    const bytes = new CachedBytesStore(db);
    bytes.put(Buffer.from('k:1'), Buffer.from('a'));
    bytes.put(Buffer.from('k:2'), Buffer.from('b'));
    await bytes.persistNow();
    bytes.put(Buffer.from('k:1'), Buffer.from('c'));
    bytes.delete(Buffer.from('k:2'));
    bytes.put(Buffer.from('k:3'), Buffer.from('d'));
    bytes.freeze();
    const scan = bytes.range(Buffer.from('k:'), Buffer.from('k;'));
    await started;
    await bytes.persistFrozen();
    release();
    expect((await scan).map(([key, value]) => [key.toString(), value.toString()])).toEqual([
      ['k:1', 'c'],
      ['k:3', 'd'],
    ]);
  });
});

describe('KeyValueStore reads in flight across a discard', () => {
  it('never caches a value read before the cache was dropped and RocksDB changed', async () => {
    const db = await database();
    const bytes = new CachedBytesStore(db);
    const store = new KeyValueStore(bytes, int64Serde);
    await db.write([{ type: 'put', key: Buffer.from('k'), value: int64Serde.serialize(1) }]);
    // A lookup is in flight while the task resets and restores a newer committed value.
    const inFlight = store.get('k');
    store.discardCache();
    await db.write([{ type: 'put', key: Buffer.from('k'), value: int64Serde.serialize(2) }]);
    store.discardCache();
    await inFlight;
    expect(await store.get('k')).toBe(2);
  });
});

describe('WindowStore', () => {
  it("keeps keys big-endian so one key's windows are contiguous and ordered", () => {
    const a = encodeWindowKey(1, 'k', 100);
    const b = encodeWindowKey(1, 'k', 200);
    const c = encodeWindowKey(2, 'k', 0);
    expect(Buffer.compare(a, b)).toBeLessThan(0);
    expect(Buffer.compare(b, c)).toBeLessThan(0);
    expect(decodeWindowKey(b)).toEqual({ segment: 1, key: 'k', start: 200 });
  });

  it('encodes times past 32 bits and multi-byte keys exactly, and refuses a time that is not a non-negative integer', () => {
    const time = Date.UTC(2026, 11, 2, 15, 59, 1, 123); // above 2^32 ms: both halves matter
    const key = 'carte-é-💳';
    const bytes = encodeWindowKey(40_000, key, time);
    expect(bytes.length).toBe(20 + Buffer.byteLength(key));
    expect(bytes.readBigUInt64BE(0)).toBe(40_000n);
    expect(bytes.readBigUInt64BE(12 + Buffer.byteLength(key))).toBe(BigInt(time));
    expect(decodeWindowKey(bytes)).toEqual({ segment: 40_000, key, start: time });
    expect(decodeWindowKey(encodeWindowKey(0, '', Number.MAX_SAFE_INTEGER)).start).toBe(Number.MAX_SAFE_INTEGER);
    // Order across the 32-bit boundary of the low half.
    expect(Buffer.compare(encodeWindowKey(1, 'k', 2 ** 32 - 1), encodeWindowKey(1, 'k', 2 ** 32))).toBeLessThan(0);
    for (const bad of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) expect(() => encodeWindowKey(1, 'k', bad)).toThrow(RangeError);
  });

  it("fetches a key's windows in a time range across segments", async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new WindowStore(bytes, int64Serde, 1_000);
    for (const start of [0, 400, 800, 900]) store.put('k', start, start / 100);
    store.put('other', 400, 99);
    await bytes.persistNow();
    expect(await store.fetch('k', 0, 850)).toEqual([
      { start: 0, value: 0 },
      { start: 400, value: 4 },
      { start: 800, value: 8 },
    ]);
    expect(await store.get('other', 400)).toBe(99);
  });

  it('answers a peek from memory only: pending writes and what a prefetch read, NOT_LOADED otherwise', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new WindowStore(bytes, int64Serde, 10_000);
    store.put('a', 100, 1);
    expect(store.peek('a', 100)).toBe(1);
    await bytes.persistNow();
    // Persisted and no longer pending: only RocksDB knows it now.
    expect(store.peek('a', 100)).toBe(NOT_LOADED);
    expect(store.peek('b', 100)).toBe(NOT_LOADED);
    await store.prefetch([
      { key: 'a', windowStart: 100 },
      { key: 'b', windowStart: 100 },
    ]);
    expect(store.peek('a', 100)).toBe(1);
    expect(store.peek('b', 100)).toBeUndefined();
    expect(await store.get('a', 100)).toBe(1);
    // A window before the horizon is gone without a read.
    store.put('a', 20_000, 2);
    expect(store.peek('a', 100)).toBeUndefined();
  });

  it('drops windows older than retention from lookups and from RocksDB, and counts writes into them', async () => {
    const db = await database();
    const bytes = new CachedBytesStore(db);
    const store = new WindowStore(bytes, int64Serde, 1_000);
    store.put('k', 0, 1);
    store.put('k', 600, 2);
    await bytes.persistNow();
    store.put('k', 2_600, 3); // stream time 2,600: horizon 1,600
    expect(await store.fetch('k', 0, 3_000)).toEqual([{ start: 2_600, value: 3 }]);
    expect(await store.get('k', 600)).toBeUndefined();
    const startsInRocksDb = async (): Promise<number[]> => {
      const starts: number[] = [];
      for await (const [key] of db.entries()) starts.push(decodeWindowKey(key).start);
      return starts;
    };
    // Not committed yet: RocksDB (committed state) keeps the windows an abort would need again.
    expect(await startsInRocksDb()).toEqual([0, 600]);
    store.onFreeze();
    await bytes.persistNow();
    await store.onCommitted();
    // Committed: the segments that held windows 0 and 600 are gone from RocksDB itself.
    expect(await startsInRocksDb()).toEqual([2_600]);
    expect(store.put('k', 100, 4)).toBe(false);
    expect(store.expiredWriteCount).toBe(1);
  });

  it('takes the stream time back when uncommitted writes are dropped', async () => {
    const bytes = new CachedBytesStore(await database());
    const store = new WindowStore(bytes, int64Serde, 1_000);
    store.put('k', 500, 1);
    store.onFreeze();
    await bytes.persistNow();
    await store.onCommitted();
    store.put('k', 5_000, 2); // an aborted batch's later event time
    expect(await store.get('k', 500)).toBeUndefined();
    bytes.discard();
    store.onDiscard(false);
    expect(store.observedStreamTime).toBe(500);
    expect(await store.get('k', 500)).toBe(1);
  });

  it('learns stream time again after a restore', async () => {
    const db = await database();
    const first = new CachedBytesStore(db);
    const store = new WindowStore(first, int64Serde, 1_000);
    store.put('a', 5_000, 1);
    store.put('b', 5_500, 2);
    await first.persistNow();
    const reopened = new WindowStore(new CachedBytesStore(db), int64Serde, 1_000);
    await reopened.afterRestore();
    expect(reopened.observedStreamTime).toBe(5_500);
    expect(reopened.put('a', 4_000, 3)).toBe(false);
  });
});
