import { NOT_LOADED, type CachedBytesStore } from './cached-store.js';
import type { Serde } from './serde.js';

/** Marks a key known to have no value (absent or deleted) in the object cache. */
const ABSENT = Symbol('absent');

/**
 * A key-value store of one partition: string keys, typed values, over the write cache and
 * RocksDB. Values are kept deserialized in a bounded object cache, so a hot key costs one
 * deserialization per load and one serialization per commit (not per record). Values returned by
 * `get` are the cached objects: change one only to `put` it back.
 */
export class KeyValueStore<V> {
  private readonly objects = new Map<string, V | typeof ABSENT>();
  private readonly dirty = new Set<string>();
  /**
   * Bumped whenever cached entries are dropped (discard, eviction): a read from RocksDB that was in
   * flight across a bump may hold a value older than what was dropped, so it is not cached (and a
   * get reads again).
   */
  private epoch = 0;

  constructor(
    private readonly bytes: CachedBytesStore,
    private readonly serde: Serde<V>,
    /** Clean entries kept in memory at most (dirty ones always stay until their commit starts). */
    private readonly cacheLimit = 100_000,
  ) {}

  async get(key: string): Promise<V | undefined> {
    for (;;) {
      const cached = this.objects.get(key);
      if (cached !== undefined) return cached === ABSENT ? undefined : cached;
      const epoch = this.epoch;
      const stored = await this.bytes.get(Buffer.from(key));
      // A put may have landed while the read was in flight: it wins.
      const raced = this.objects.get(key);
      if (raced !== undefined) return raced === ABSENT ? undefined : raced;
      // Entries were dropped meanwhile (a newer value of this key among them, perhaps): read again.
      if (epoch !== this.epoch) continue;
      const value = stored === undefined ? undefined : this.serde.deserialize(stored);
      this.remember(key, value ?? ABSENT);
      return value;
    }
  }

  /**
   * The value of a key in memory, without a promise: undefined for a key known to have none,
   * NOT_LOADED when only `get` can tell. After `prefetch`, the keys it loaded answer here.
   */
  peek(key: string): V | undefined | typeof NOT_LOADED {
    const cached = this.objects.get(key);
    if (cached === undefined) return NOT_LOADED;
    return cached === ABSENT ? undefined : cached;
  }

  /** Loads keys that are not in memory with one RocksDB call, so the gets that follow are hits. */
  async prefetch(keys: Iterable<string>): Promise<void> {
    // Most keys of a busy store are in memory: only the others are collected (and deduplicated).
    const absent = new Set<string>();
    for (const key of keys) if (!this.objects.has(key)) absent.add(key);
    if (absent.size === 0) return;
    const missing = [...absent];
    const epoch = this.epoch;
    const values = await this.bytes.getMany(missing.map((key) => Buffer.from(key)));
    // Entries were dropped meanwhile: these reads may be older than them; the gets will read again.
    if (epoch !== this.epoch) return;
    missing.forEach((key, index) => {
      if (this.objects.has(key)) return;
      const stored = values[index];
      this.remember(key, stored === undefined ? ABSENT : this.serde.deserialize(stored));
    });
  }

  put(key: string, value: V): void {
    this.objects.delete(key); // re-insert: most recently used last
    this.objects.set(key, value);
    this.dirty.add(key);
  }

  delete(key: string): void {
    this.objects.delete(key);
    this.objects.set(key, ABSENT);
    this.dirty.add(key);
  }

  /** Entries whose keys start with `prefix` (all entries for ''), in key order. */
  async range(prefix = ''): Promise<[string, V][]> {
    this.serializeDirty();
    const from = Buffer.from(prefix);
    const to = prefix === '' ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : Buffer.concat([from, Buffer.from([0xff])]);
    const entries = await this.bytes.range(from, to);
    return entries.map(([key, value]) => [key.toString('utf8'), this.serde.deserialize(value)]);
  }

  /**
   * Hands the changed objects to the bytes layer, serialized (the commit's freeze calls this
   * first): from here on they are ordinary pending writes, and their cache entries are clean.
   */
  serializeDirty(): void {
    for (const key of this.dirty) {
      const value = this.objects.get(key);
      if (value === undefined || value === ABSENT) this.bytes.delete(Buffer.from(key));
      else this.bytes.put(Buffer.from(key), this.serde.serialize(value));
    }
    this.dirty.clear();
    this.evict();
  }

  /** Forgets every cached object (after an abort the cache may hold uncommitted changes). */
  discardCache(): void {
    this.epoch++;
    this.objects.clear();
    this.dirty.clear();
  }

  get cachedCount(): number {
    return this.objects.size;
  }

  private remember(key: string, value: V | typeof ABSENT): void {
    this.objects.set(key, value);
    if (this.objects.size > this.cacheLimit) this.evict();
  }

  /** Drops the least recently inserted clean entries beyond the limit. */
  private evict(): void {
    if (this.objects.size <= this.cacheLimit) return;
    this.epoch++;
    for (const key of this.objects.keys()) {
      if (this.objects.size <= this.cacheLimit * 0.9) break;
      if (!this.dirty.has(key)) this.objects.delete(key);
    }
  }
}
