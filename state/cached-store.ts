import type { RangeOptions, RocksDatabase } from './rocksdb.js';

/** One uncommitted write: a value, or null for a delete. */
export interface PendingChange {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

/**
 * The caching layer over RocksDB: writes stay in memory until the stage's commit succeeds, so
 * RocksDB only ever holds committed state (an aborted transaction just discards the cache).
 * Reads see uncommitted writes first. The pending writes are also what the changelog gets.
 */
export class CachedBytesStore {
  private dirty = new Map<string, PendingChange>();

  constructor(readonly db: RocksDatabase) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    const pending = this.dirty.get(key.toString('hex'));
    if (pending) return pending.value ?? undefined;
    return this.db.get(key);
  }

  put(key: Buffer, value: Buffer): void {
    const hex = key.toString('hex');
    this.dirty.delete(hex); // re-insert: the changelog keeps the order of last writes
    this.dirty.set(hex, { key, value });
  }

  delete(key: Buffer): void {
    const hex = key.toString('hex');
    this.dirty.delete(hex);
    this.dirty.set(hex, { key, value: null });
  }

  /** Entries with keys in [gte, lt), committed and pending merged, in key order. */
  async range(gte: Buffer, lt: Buffer): Promise<[Buffer, Buffer][]> {
    const merged = new Map<string, [Buffer, Buffer] | null>();
    const options: RangeOptions = { gte, lt };
    for await (const [key, value] of this.db.entries(options)) merged.set(key.toString('hex'), [key, value]);
    for (const [hex, change] of this.dirty) {
      if (Buffer.compare(change.key, gte) < 0 || Buffer.compare(change.key, lt) >= 0) continue;
      merged.set(hex, change.value === null ? null : [change.key, change.value]);
    }
    return [...merged.entries()]
      .filter((entry): entry is [string, [Buffer, Buffer]] => entry[1] !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, entry]) => entry);
  }

  pending(): PendingChange[] {
    return [...this.dirty.values()];
  }

  get pendingCount(): number {
    return this.dirty.size;
  }

  /** After the commit succeeded: makes the pending writes durable in RocksDB. */
  async flush(): Promise<void> {
    const changes = this.pending();
    this.dirty = new Map();
    await this.db.write(changes.map((change) => (change.value === null ? { type: 'del' as const, key: change.key } : { type: 'put' as const, key: change.key, value: change.value })));
  }

  /** After an abort: forgets the pending writes. */
  discard(): void {
    this.dirty = new Map();
  }
}
