/**
 * Remembers event ids for a time-to-live measured in event time, to drop duplicates. This
 * in-memory version is bounded by entries as well as by age (oldest forgotten first); the
 * RocksDB store with a changelog replaces it so that the memory survives restarts.
 */
export interface DedupStore {
  /** True when the id was seen within the TTL; otherwise remembers it and returns false. */
  seen(eventId: string, eventTime: number): boolean;
  /** Forgets ids older than watermark − TTL. */
  expire(watermark: number): void;
  readonly size: number;
  clear(): void;
}

export class InMemoryDedupStore implements DedupStore {
  /** Insertion order is event arrival order: the first entries are the oldest arrivals. */
  private readonly ids = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.ids.size;
  }

  seen(eventId: string, eventTime: number): boolean {
    const previous = this.ids.get(eventId);
    if (previous !== undefined && Math.abs(eventTime - previous) <= this.ttlMs) return true;
    this.ids.delete(eventId);
    this.ids.set(eventId, eventTime);
    if (this.ids.size > this.maxEntries) {
      const oldest = this.ids.keys().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return false;
  }

  expire(watermark: number): void {
    const horizon = watermark - this.ttlMs;
    for (const [id, time] of this.ids) if (time < horizon) this.ids.delete(id);
  }

  clear(): void {
    this.ids.clear();
  }
}
