import { NOT_LOADED, type CachedBytesStore } from './cached-store.js';
import type { Serde } from './serde.js';

/**
 * A window store of one partition: values by (key, window start), segmented by time. The RocksDB
 * key is [segment: 8 bytes BE][key length: 4 bytes BE][key][window start: 8 bytes BE], so one
 * key's windows in one segment are a contiguous range and whole segments drop with one range
 * delete. Windows older than observed stream time − retention are invisible at once and
 * physically dropped by segment; writes into them are counted, not thrown.
 *
 * Stream time follows the commits like the writes do: a put advances the working stream time
 * (what lookups see); the commit freezes it with the writes; only a committed stream time drops
 * segments from RocksDB (after the commit's writes are persisted), and dropping uncommitted work
 * takes the stream time back with it — an aborted batch can neither delete committed windows nor
 * hide them from the records processed again.
 */
export class WindowStore<V> {
  private streamTime = Number.NEGATIVE_INFINITY;
  private frozenStreamTime: number | undefined;
  private committedStreamTime = Number.NEGATIVE_INFINITY;
  private droppedBefore = 0;
  readonly segmentIntervalMs: number;
  private expiredWrites = 0;

  constructor(
    private readonly bytes: CachedBytesStore,
    private readonly serde: Serde<V>,
    readonly retentionMs: number,
  ) {
    this.segmentIntervalMs = Math.max(1, Math.floor(retentionMs / 2));
  }

  /** Writes refused because their window had already expired. */
  get expiredWriteCount(): number {
    return this.expiredWrites;
  }

  get observedStreamTime(): number {
    return this.streamTime;
  }

  /** The oldest window start still visible. */
  private horizon(): number {
    return this.streamTime - this.retentionMs;
  }

  /** Writes a window's value; false (and counted) where the window has already expired. */
  put(key: string, windowStart: number, value: V): boolean {
    if (windowStart < 0 || !Number.isSafeInteger(windowStart))
      throw new RangeError(`window start ${windowStart} is not a non-negative integer of milliseconds`);
    if (windowStart < this.horizon()) {
      this.expiredWrites++;
      return false;
    }
    this.bytes.put(encodeWindowKey(this.segmentOf(windowStart), key, windowStart), this.serde.serialize(value));
    if (windowStart > this.streamTime) this.streamTime = windowStart;
    return true;
  }

  /** A commit starts: its stream time is the one observed so far. */
  onFreeze(): void {
    this.frozenStreamTime = this.streamTime;
  }

  /** The frozen commit's writes are in RocksDB: its stream time is committed, and expired segments go. */
  async onCommitted(): Promise<void> {
    if (this.frozenStreamTime === undefined) return;
    this.committedStreamTime = Math.max(this.committedStreamTime, this.frozenStreamTime);
    this.frozenStreamTime = undefined;
    await this.dropExpiredSegments();
  }

  /** Uncommitted writes were dropped (a commit in flight keeps its own, if asked): their stream time goes too. */
  onDiscard(keepFrozen: boolean): void {
    if (!keepFrozen) this.frozenStreamTime = undefined;
    this.streamTime = this.frozenStreamTime ?? this.committedStreamTime;
  }

  /** Reads the given (key, window) pairs from RocksDB in one call, for the gets that follow. */
  async prefetch(entries: Iterable<{ readonly key: string; readonly windowStart: number }>): Promise<void> {
    const keys: Buffer[] = [];
    for (const { key, windowStart } of entries) {
      if (windowStart >= this.horizon() && windowStart >= 0 && Number.isSafeInteger(windowStart))
        keys.push(encodeWindowKey(this.segmentOf(windowStart), key, windowStart));
    }
    await this.bytes.readAheadOf(keys);
  }

  /** `get` without a promise where the value is in memory (a prefetch read it); NOT_LOADED otherwise. */
  peek(key: string, windowStart: number): V | undefined | typeof NOT_LOADED {
    if (windowStart < this.horizon()) return undefined;
    const value = this.bytes.peek(encodeWindowKey(this.segmentOf(windowStart), key, windowStart));
    return value === undefined || value === NOT_LOADED ? value : this.serde.deserialize(value);
  }

  async get(key: string, windowStart: number): Promise<V | undefined> {
    if (windowStart < this.horizon()) return undefined;
    const value = await this.bytes.get(encodeWindowKey(this.segmentOf(windowStart), key, windowStart));
    return value === undefined ? undefined : this.serde.deserialize(value);
  }

  /** A key's windows with start in [from, to], oldest first; expired windows are never returned. */
  async fetch(key: string, from: number, to: number): Promise<{ start: number; value: V }[]> {
    const lower = Math.max(from, this.horizon(), 0);
    if (to < lower) return [];
    const results: { start: number; value: V }[] = [];
    for (let segment = this.segmentOf(lower); segment <= this.segmentOf(to); segment++) {
      const entries = await this.bytes.range(encodeWindowKey(segment, key, lower), encodeWindowKey(segment, key, to + 1));
      for (const [rawKey, value] of entries) results.push({ start: decodeWindowKey(rawKey).start, value: this.serde.deserialize(value) });
    }
    return results;
  }

  /** Applies a changelog record during restore (key without the segment prefix). */
  restoreKey(changelogKey: Buffer): Buffer {
    const { key, start } = decodeChangelogKey(changelogKey);
    return encodeWindowKey(this.segmentOf(start), key, start);
  }

  /** The changelog's key for a store key: the segment is derived again on restore. */
  static changelogKey(storeKey: Buffer): Buffer {
    return storeKey.subarray(8);
  }

  /** After restore: learns the (committed) stream time from what was restored and drops expired segments. */
  async afterRestore(): Promise<void> {
    let latest = Number.NEGATIVE_INFINITY;
    for await (const [rawKey] of this.bytes.db.entries({ reverse: true, limit: 1 })) latest = decodeWindowKey(rawKey).start;
    // The newest segment's entries are not sorted by start across keys: scan that segment.
    if (latest !== Number.NEGATIVE_INFINITY) {
      const segment = this.segmentOf(latest);
      for await (const [rawKey] of this.bytes.db.entries({ gte: segmentPrefix(segment), lt: segmentPrefix(segment + 1) })) {
        latest = Math.max(latest, decodeWindowKey(rawKey).start);
      }
      this.committedStreamTime = Math.max(this.committedStreamTime, latest);
    }
    this.streamTime = Math.max(this.streamTime, this.committedStreamTime);
    await this.dropExpiredSegments();
  }

  private segmentOf(start: number): number {
    return Math.floor(start / this.segmentIntervalMs);
  }

  /** Whole segments that end before the committed horizon hold only expired windows. */
  private async dropExpiredSegments(): Promise<void> {
    if (this.committedStreamTime === Number.NEGATIVE_INFINITY) return;
    const firstLive = this.segmentOf(Math.max(0, this.committedStreamTime - this.retentionMs));
    if (firstLive > this.droppedBefore) {
      await this.bytes.db.clear({ gte: segmentPrefix(0), lt: segmentPrefix(firstLive) });
      this.droppedBefore = firstLive;
    }
  }
}

function segmentPrefix(segment: number): Buffer {
  const bytes = Buffer.alloc(8);
  writeUint64(bytes, Math.max(0, segment), 0);
  return bytes;
}

export function encodeWindowKey(segment: number, key: string, start: number): Buffer {
  const keyLength = Buffer.byteLength(key);
  const bytes = Buffer.allocUnsafe(8 + 4 + keyLength + 8);
  writeUint64(bytes, segment, 0);
  bytes.writeUInt32BE(keyLength, 8);
  bytes.write(key, 12);
  writeUint64(bytes, start, 12 + keyLength);
  return bytes;
}

/** A safe non-negative integer as 8 big-endian bytes (two 32-bit halves: no BigInt per key). */
function writeUint64(bytes: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not a non-negative safe integer`);
  bytes.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  bytes.writeUInt32BE(value >>> 0, offset + 4);
}

export function decodeWindowKey(bytes: Buffer): { segment: number; key: string; start: number } {
  const length = bytes.readUInt32BE(8);
  return {
    segment: Number(bytes.readBigUInt64BE(0)),
    key: bytes.subarray(12, 12 + length).toString('utf8'),
    start: Number(bytes.readBigUInt64BE(12 + length)),
  };
}

function decodeChangelogKey(bytes: Buffer): { key: string; start: number } {
  if (bytes.length < 12) throw new Error(`window changelog key of ${bytes.length} bytes is too short`);
  const length = bytes.readUInt32BE(0);
  if (bytes.length !== 4 + length + 8) throw new Error('window changelog key has an inconsistent length');
  return { key: bytes.subarray(4, 4 + length).toString('utf8'), start: Number(bytes.readBigUInt64BE(4 + length)) };
}
