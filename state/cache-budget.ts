/** A store whose cache a budget can shrink. */
export interface CacheMember {
  /** The budget's clock when the store was last used: the least recently used stores give first. */
  readonly lastUsed: number;
  /** Drops the store's least recently used clean entries until the budget is back at its target (or none is left). */
  evictClean(): void;
}

/**
 * A bound on the bytes that the object caches of a process's key-value stores hold, shared by all
 * of them (as Kafka Streams' `statestore.cache.max.bytes` is by an instance's stores). Sizes are
 * the entries' serialized bytes (key and value); the objects in memory take a few times that.
 * Beyond the bound, the stores used least recently give up their least recently used clean entries
 * first, down to 90% of it; entries written since the last commit stay until their commit begins.
 */
export class CacheBudget {
  private used = 0;
  private clock = 0;
  private evicted = 0;
  private readonly members = new Set<CacheMember>();

  constructor(readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError(`a cache budget of ${maxBytes} bytes`);
  }

  /** The bytes held now, by every store together. */
  get usedBytes(): number {
    return this.used;
  }

  /** Clean entries its stores dropped to stay within their bounds, since the budget began. */
  get evictedEntries(): number {
    return this.evicted;
  }

  get exceeded(): boolean {
    return this.used > this.maxBytes;
  }

  /** Whether eviction may stop: at 90% of the bound or below. */
  get atTarget(): boolean {
    return this.used <= this.maxBytes * 0.9;
  }

  join(member: CacheMember): void {
    this.members.add(member);
  }

  leave(member: CacheMember): void {
    this.members.delete(member);
  }

  /** The next tick of the clock that orders the stores' use. */
  tick(): number {
    return ++this.clock;
  }

  /** A store's entries changed size by `delta` bytes (negative: released). */
  adjust(delta: number): void {
    this.used += delta;
  }

  /** A store dropped `count` clean entries. */
  noteEvicted(count: number): void {
    this.evicted += count;
  }

  /** Over the bound: evicts from the least recently used stores first, until back at the target. */
  reclaim(): void {
    if (!this.exceeded) return;
    const byUse = [...this.members].sort((left, right) => left.lastUsed - right.lastUsed);
    for (const member of byUse) {
      member.evictClean();
      if (this.atTarget) return;
    }
  }
}
