import type { CachedBytesStore } from './cached-store.js';
import type { Serde } from './serde.js';

/** A key-value store of one partition: string keys, typed values. */
export class KeyValueStore<V> {
  constructor(
    private readonly bytes: CachedBytesStore,
    private readonly serde: Serde<V>,
  ) {}

  async get(key: string): Promise<V | undefined> {
    const value = await this.bytes.get(Buffer.from(key));
    return value === undefined ? undefined : this.serde.deserialize(value);
  }

  put(key: string, value: V): void {
    this.bytes.put(Buffer.from(key), this.serde.serialize(value));
  }

  delete(key: string): void {
    this.bytes.delete(Buffer.from(key));
  }

  /** Entries whose keys start with `prefix` (all entries for ''), in key order. */
  async range(prefix = ''): Promise<[string, V][]> {
    const from = Buffer.from(prefix);
    const to = prefix === '' ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : Buffer.concat([from, Buffer.from([0xff])]);
    const entries = await this.bytes.range(from, to);
    return entries.map(([key, value]) => [key.toString('utf8'), this.serde.deserialize(value)]);
  }
}
