/**
 * The state a monitoring processor keeps: a key-value store. In a stage it is the task's RocksDB
 * store with its changelog (state/KeyValueStore has this shape: values are cached objects,
 * serialized once per commit); in replays and tests a Map. Values returned by get may be the
 * stored objects themselves: change one only to put it back.
 */
export interface ProcessorStore<V> {
  get(key: string): Promise<V | undefined>;
  put(key: string, value: V): void;
  delete(key: string): void;
  /** Entries whose keys start with `prefix`, in the keys' byte order. */
  range(prefix: string): Promise<[string, V][]>;
}

export class MemoryStore<V> implements ProcessorStore<V> {
  readonly entries = new Map<string, V>();

  get(key: string): Promise<V | undefined> {
    return Promise.resolve(this.entries.get(key));
  }

  put(key: string, value: V): void {
    this.entries.set(key, value);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  range(prefix: string): Promise<[string, V][]> {
    const found = [...this.entries].filter(([key]) => key.startsWith(prefix));
    found.sort(([left], [right]) => Buffer.compare(Buffer.from(left), Buffer.from(right)));
    return Promise.resolve(found);
  }
}

/** A 32-bit FNV-1a hash of a string: stable seeds for sketches (the same key gives the same compactions everywhere). */
export function seedOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
