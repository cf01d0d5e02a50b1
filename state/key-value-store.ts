import type { CacheBudget, CacheMember } from './cache-budget.js';
import { NOT_LOADED, type CachedBytesStore } from './cached-store.js';
import type { Serde } from './serde.js';

/** Marks a key known to have no value (absent or deleted) in the object cache. */
const ABSENT = Symbol('absent');

/** The bytes an entry known to be absent is counted as (its key's, and a little). */
const ABSENT_BYTES = 16;

/**
 * A key-value store of one partition: string keys, typed values, over the write cache and
 * RocksDB. Values are kept deserialized in a bounded object cache, so a hot key costs one
 * deserialization per load and one serialization per commit (not per record). Values returned by
 * `get` are the cached objects: change one only to `put` it back.
 *
 * The cache is bounded by entries and, given a budget, by bytes (the entries' serialized size, as
 * last read or written, plus what `heldBeside` says a written value holds beside it). With a
 * budget, a hit makes the entry the most recently used, and the least recently used clean entries
 * go first.
 */
export class KeyValueStore<V> implements CacheMember {
  private readonly objects = new Map<string, V | typeof ABSENT>();
  private readonly dirty = new Set<string>();
  /** Dirty keys written with `cache: false`: dropped from memory once serialized. */
  private readonly uncached = new Set<string>();
  /** Each cached entry's serialized size, counted in the budget (only with a budget). */
  private readonly sizes = new Map<string, number>();
  /** The budget's clock at the last use (a hit, a load, a write). */
  lastUsed = 0;
  /** Closed (its task closed): reads still answer, but nothing is cached or counted any more. */
  private closed = false;
  /**
   * Bumped whenever the whole cache is dropped (a discard): a read from RocksDB that was in flight
   * across a bump may hold a value older than what was dropped, so it is not cached (and a get
   * reads again).
   */
  private epoch = 0;
  /** Reads of the bytes layer in flight (gets and prefetches). */
  private reading = 0;
  /** Entries evicted while reads were in flight, so far. */
  private evictions = 0;
  /**
   * Keys evicted while reads were in flight, with the count of such evictions at theirs: a read of
   * one of them that began before its eviction may hold a value older than the one evicted (written
   * and committed meanwhile), so it is not cached. Only those keys: an eviction elsewhere leaves
   * the other reads alone. Emptied whenever no read is in flight.
   */
  private readonly evictedWhileReading = new Map<string, number>();

  constructor(
    private readonly bytes: CachedBytesStore,
    private readonly serde: Serde<V>,
    /** Clean entries kept in memory at most (dirty ones always stay until their commit starts). */
    private readonly cacheLimit = 100_000,
    /** The bytes this store's cache may take, shared with the process's other stores; none: no byte bound. */
    private readonly budget?: CacheBudget,
    /**
     * The bytes a value holds in memory beside its serialized form (state derived from it and kept
     * with it, which goes when the entry is evicted), counted with the entry in the budget when it
     * is serialized; none: only the serialized bytes count.
     */
    private readonly heldBeside?: (value: V) => number,
  ) {
    budget?.join(this);
  }

  async get(key: string): Promise<V | undefined> {
    for (;;) {
      const cached = this.objects.get(key);
      if (cached !== undefined) return this.hit(key, cached);
      const epoch = this.epoch;
      const mark = this.startRead();
      let stored: Buffer | undefined;
      let evicted: boolean;
      try {
        stored = await this.bytes.get(Buffer.from(key));
        evicted = this.evictedSince(key, mark);
      } finally {
        this.endRead();
      }
      // A put may have landed while the read was in flight: it wins.
      const raced = this.objects.get(key);
      if (raced !== undefined) return this.hit(key, raced);
      // The cache was dropped meanwhile, or this key evicted (a newer value of it, perhaps): read again.
      if (epoch !== this.epoch || evicted) continue;
      const value = stored === undefined ? undefined : this.serde.deserialize(stored);
      this.remember(key, value ?? ABSENT, stored === undefined ? ABSENT_BYTES : key.length + stored.length);
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
    return this.hit(key, cached);
  }

  /** Loads keys that are not in memory with one RocksDB call, so the gets that follow are hits. */
  async prefetch(keys: Iterable<string>): Promise<void> {
    // Most keys of a busy store are in memory: only the others are collected (and deduplicated).
    const absent = new Set<string>();
    const present: string[] = [];
    for (const key of keys) {
      if (!this.objects.has(key)) absent.add(key);
      else if (this.budget) present.push(key);
    }
    if (absent.size === 0) return;
    const missing = [...absent];
    const epoch = this.epoch;
    const mark = this.startRead();
    try {
      const values = await this.bytes.getMany(missing.map((key) => Buffer.from(key)));
      // The cache was dropped meanwhile: these reads may be older than what it held; the gets will
      // read again. A closed store caches nothing.
      if (epoch !== this.epoch || this.closed) return;
      // All of them first, then one eviction: an eviction in between could drop a newer value of a
      // later key, which the loop would then replace with this older read. A key evicted while
      // RocksDB was read is left to its get, as is one cached meanwhile (that is newer).
      missing.forEach((key, index) => {
        if (this.objects.has(key) || this.evictedSince(key, mark)) return;
        const stored = values[index];
        this.objects.set(key, stored === undefined ? ABSENT : this.serde.deserialize(stored));
        this.resize(key, stored === undefined ? ABSENT_BYTES : key.length + stored.length);
      });
      // The batch's keys that were cached already become the most recently used too: the eviction
      // below must not drop what the batch is about to read.
      for (const key of present) {
        const cached = this.objects.get(key);
        if (cached !== undefined) this.setRecent(key, cached);
      }
      this.touch();
      this.evict();
    } finally {
      this.endRead();
    }
  }

  /**
   * Writes a value. `cache: false` for a value not expected to be read again soon (a stage's cold
   * data): it stays in memory until `serializeDirty` hands it to the bytes layer (the commit's
   * freeze, or a `range`), and is then dropped, so that it does not push hot entries out of the
   * cache. A later read loads it again (from the pending writes or RocksDB) and caches it as any
   * read. Drops are not counted as evictions.
   */
  put(key: string, value: V, { cache = true }: { readonly cache?: boolean } = {}): void {
    this.setRecent(key, value);
    this.written(key, cache);
  }

  /** Deletes a key; `cache: false` as for `put` (no entry is kept for the absent key once serialized). */
  delete(key: string, { cache = true }: { readonly cache?: boolean } = {}): void {
    this.setRecent(key, ABSENT);
    this.written(key, cache);
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
      if (value === undefined || value === ABSENT) {
        this.bytes.delete(Buffer.from(key));
        this.resize(key, ABSENT_BYTES);
      } else {
        const serialized = this.serde.serialize(value);
        this.bytes.put(Buffer.from(key), serialized);
        this.resize(key, key.length + serialized.length + (this.budget && this.heldBeside ? this.heldBeside(value) : 0));
      }
    }
    this.dirty.clear();
    for (const key of this.uncached) this.drop(key);
    this.uncached.clear();
    this.evict();
  }

  /** Forgets every cached object (after an abort the cache may hold uncommitted changes). */
  discardCache(): void {
    this.epoch++;
    this.objects.clear();
    this.dirty.clear();
    this.uncached.clear();
    this.releaseAll();
  }

  /** Its task closed: the cache is emptied and leaves the budget; reads in flight cache nothing. */
  close(): void {
    this.closed = true;
    this.discardCache();
    this.budget?.leave(this);
  }

  get cachedCount(): number {
    return this.objects.size;
  }

  /** The bytes this store's cache holds, as counted in its budget (0 without one). */
  get cachedBytes(): number {
    let total = 0;
    for (const size of this.sizes.values()) total += size;
    return total;
  }

  /** A read of the bytes layer begins: returns the eviction count to compare with at its end. */
  private startRead(): number {
    this.reading++;
    return this.evictions;
  }

  private endRead(): void {
    this.reading--;
    if (this.reading === 0) this.evictedWhileReading.clear();
  }

  /**
   * Remembers a key evicted while reads are in flight. Reads that overlap without end (lookups
   * beside the task's own reads) would never empty the map: past the entry limit, every read in
   * flight is discarded instead, as a discard does.
   */
  private markEvicted(key: string): void {
    if (this.evictedWhileReading.size >= this.cacheLimit) {
      this.epoch++;
      this.evictedWhileReading.clear();
      return;
    }
    this.evictedWhileReading.set(key, ++this.evictions);
  }

  /** Whether `key` was evicted after the read that began at `mark` (which may hold an older value). */
  private evictedSince(key: string, mark: number): boolean {
    return (this.evictedWhileReading.get(key) ?? 0) > mark;
  }

  private hit(key: string, cached: V | typeof ABSENT): V | undefined {
    if (this.budget) {
      this.setRecent(key, cached);
      this.lastUsed = this.budget.tick();
    }
    return cached === ABSENT ? undefined : cached;
  }

  /** Caches an entry as the most recently used (the map's last): eviction takes the entries not used for longest. */
  private setRecent(key: string, value: V | typeof ABSENT): void {
    this.objects.delete(key);
    this.objects.set(key, value);
  }

  /**
   * A written entry is dirty: it cannot be evicted before its commit's freeze, so it does not count
   * in the budget until `serializeDirty` gives it its new size (else dirty bytes could hold the
   * budget above its target, and every read would evict every clean entry).
   */
  private written(key: string, cache: boolean): void {
    if (cache) this.uncached.delete(key);
    else this.uncached.add(key);
    this.dirty.add(key);
    this.resize(key, 0);
    this.touch();
  }

  private touch(): void {
    if (this.budget) this.lastUsed = this.budget.tick();
  }

  private remember(key: string, value: V | typeof ABSENT, size: number): void {
    if (this.closed) return;
    this.objects.set(key, value);
    this.resize(key, size);
    this.touch();
    this.evict();
  }

  private resize(key: string, size: number): void {
    // A closed store has left its budget: nothing it holds is counted any more.
    if (!this.budget || this.closed) return;
    this.budget.adjust(size - (this.sizes.get(key) ?? 0));
    this.sizes.set(key, size);
  }

  private releaseAll(): void {
    if (!this.budget) return;
    this.budget.adjust(-this.cachedBytes);
    this.sizes.clear();
  }

  /** Beyond the entry limit, this store drops entries; beyond the byte budget, the stores used least recently do. */
  private evict(): void {
    if (this.objects.size > this.cacheLimit) this.dropClean(() => this.objects.size <= this.cacheLimit * 0.9);
    this.budget?.reclaim();
  }

  evictClean(): void {
    const budget = this.budget;
    if (budget) this.dropClean(() => budget.atTarget);
  }

  /** Drops the least recently used clean entries until `enough` (or none is left). */
  private dropClean(enough: () => boolean): void {
    // Every dirty key is cached too: none clean when the counts are equal.
    if (this.objects.size === this.dirty.size || enough()) return;
    let dropped = 0;
    for (const key of this.objects.keys()) {
      if (enough()) break;
      if (this.dirty.has(key)) continue;
      this.drop(key);
      dropped++;
    }
    if (dropped > 0) this.budget?.noteEvicted(dropped);
  }

  /** Drops a clean entry from memory. */
  private drop(key: string): void {
    if (!this.objects.delete(key)) return;
    // A read of this key in flight may hold a value older than the one dropped: it is not cached.
    if (this.reading > 0) this.markEvicted(key);
    if (this.budget) {
      this.budget.adjust(-(this.sizes.get(key) ?? 0));
      this.sizes.delete(key);
    }
  }
}
