import { createRequire } from 'node:module';
import { StateStoreError } from './errors.js';

/**
 * A promise-shaped handle on one RocksDB database through the npm `rocksdb` binding
 * (abstract-leveldown API, RocksDB 6.x, prebuilt binaries). Keys and values are Buffers; keys
 * sort bytewise, which the window store's big-endian layout relies on.
 */
interface BindingIterator {
  next(callback: (error: Error | undefined, key?: Buffer, value?: Buffer) => void): void;
  end(callback: (error?: Error) => void): void;
}

interface BindingBatch {
  put(key: Buffer, value: Buffer): void;
  del(key: Buffer): void;
  write(options: { sync: boolean }, callback: (error?: Error) => void): void;
}

interface BindingDatabase {
  open(options: { createIfMissing: boolean; errorIfExists: boolean }, callback: (error?: Error) => void): void;
  close(callback: (error?: Error) => void): void;
  get(key: Buffer, options: { asBuffer: true }, callback: (error: Error | undefined, value?: Buffer) => void): void;
  getMany(keys: Buffer[], options: { asBuffer: true }, callback: (error: Error | undefined, values?: (Buffer | undefined)[]) => void): void;
  /** A chained batch: one call per operation (the array form reads three named properties of each in C++, about 3× the main thread's time). */
  batch(): BindingBatch;
  iterator(options: RangeOptions & { keyAsBuffer: true; valueAsBuffer: true }): BindingIterator;
  clear(options: RangeOptions, callback: (error?: Error) => void): void;
  /** A RocksDB property (`rocksdb.size-all-mem-tables`…), read synchronously; '' where unknown. */
  getProperty(property: string): string;
}

export type BatchOperation = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

export interface RangeOptions {
  readonly gte?: Buffer;
  readonly lt?: Buffer;
  readonly lte?: Buffer;
  readonly reverse?: boolean;
  readonly limit?: number;
}

// The binding is CommonJS without types; this is its whole surface as we use it.
const binding = createRequire(import.meta.url)('rocksdb') as (location: string) => BindingDatabase;

function call(run: (callback: (error?: Error) => void) => void, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    run((error) => {
      if (error) reject(new StateStoreError(`RocksDB ${what} failed: ${error.message}`, { cause: error }));
      else resolve();
    });
  });
}

/** What RocksDB holds in memory for the databases of this process, in bytes (its own accounting). */
export interface RocksMemory {
  /** Memtables: writes not yet flushed to table files, and flushed ones still pinned by an open iterator. */
  readonly memtables: number;
  /** Blocks of table files read and cached (each database has its own block cache). */
  readonly blockCache: number;
  /** Index and filter blocks of open table files, held outside the block cache. */
  readonly tableReaders: number;
}

/**
 * The key `syncWal()` deletes: 0xFF starts no key of ours (a key-value store's keys are UTF-8, which
 * never holds 0xFF; a window store's start with a segment number below 2^53, whose first byte is 0).
 */
export const SYNC_KEY = Buffer.from([0xff, 0xfe, 0x73, 0x79, 0x6e, 0x63]);

/** Every database open in this process: RocksDB's memory is the process's, whoever opened them. */
const openDatabases = new Set<RocksDatabase>();

export class RocksDatabase {
  /** Sums RocksDB's own memory figures over the databases open now. */
  static memory(): RocksMemory {
    let memtables = 0;
    let blockCache = 0;
    let tableReaders = 0;
    for (const each of openDatabases) {
      memtables += each.intProperty('rocksdb.size-all-mem-tables');
      blockCache += each.intProperty('rocksdb.block-cache-usage');
      tableReaders += each.intProperty('rocksdb.estimate-table-readers-mem');
    }
    return { memtables, blockCache, tableReaders };
  }

  /** Databases open in this process now (opened and not yet closed). */
  static get openCount(): number {
    return openDatabases.size;
  }

  private constructor(
    readonly location: string,
    private readonly db: BindingDatabase,
  ) {}

  static async open(location: string): Promise<RocksDatabase> {
    const db = binding(location);
    await call((callback) => db.open({ createIfMissing: true, errorIfExists: false }, callback), `open of ${location}`);
    const opened = new RocksDatabase(location, db);
    openDatabases.add(opened);
    return opened;
  }

  private intProperty(name: string): number {
    const value = Number(this.db.getProperty(name));
    return Number.isFinite(value) ? value : 0;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      this.db.get(key, { asBuffer: true }, (error, value) => {
        if (error && /NotFound/i.test(error.message)) resolve(undefined);
        else if (error) reject(new StateStoreError(`RocksDB get failed: ${error.message}`, { cause: error }));
        else resolve(value);
      });
    });
  }

  /** Several keys in one call (one trip to the binding's thread pool); undefined where absent. */
  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    return new Promise((resolve, reject) => {
      this.db.getMany(keys, { asBuffer: true }, (error, values) => {
        if (error) reject(new StateStoreError(`RocksDB getMany failed: ${error.message}`, { cause: error }));
        else resolve(values ?? []);
      });
    });
  }

  /**
   * Writes a batch atomically. `sync` (the default) waits until RocksDB's WAL is on disk; without
   * it the batch is in the WAL in the OS's page cache (a killed process keeps it, a power loss may
   * not) until the next synced write or `syncWal()`.
   */
  async write(operations: readonly BatchOperation[], options: { readonly sync?: boolean } = {}): Promise<void> {
    if (operations.length === 0) return;
    const batch = this.db.batch();
    try {
      for (const operation of operations) {
        if (operation.type === 'put') batch.put(operation.key, operation.value);
        else batch.del(operation.key);
      }
    } catch (error) {
      // abstract-leveldown checks each key and value as it is added (an empty key, say).
      throw new StateStoreError(`RocksDB batch write failed: ${(error as Error).message}`, { cause: error });
    }
    await call((callback) => batch.write({ sync: options.sync ?? true }, callback), 'batch write');
  }

  /**
   * Puts every write so far on disk: a synced write syncs RocksDB's write-ahead log, and with it
   * the unsynced batches before it (RocksDB's files other than the log are synced when written).
   * The binding has no call for SyncWAL, so the synced write deletes `SYNC_KEY`, a key no store
   * writes; a deletion of an absent key changes nothing that a read or an iteration sees.
   */
  async syncWal(): Promise<void> {
    await this.write([{ type: 'del', key: SYNC_KEY }], { sync: true });
  }

  async *entries(range: RangeOptions = {}): AsyncGenerator<[Buffer, Buffer]> {
    const iterator = this.db.iterator({ ...range, keyAsBuffer: true, valueAsBuffer: true });
    try {
      for (;;) {
        const entry = await new Promise<[Buffer, Buffer] | undefined>((resolve, reject) => {
          iterator.next((error, key, value) => {
            if (error) reject(new StateStoreError(`RocksDB iteration failed: ${error.message}`, { cause: error }));
            else resolve(key === undefined || value === undefined ? undefined : [key, value]);
          });
        });
        if (!entry) return;
        yield entry;
      }
    } finally {
      await new Promise<void>((resolve) => iterator.end(() => resolve()));
    }
  }

  async clear(range: RangeOptions): Promise<void> {
    await call((callback) => this.db.clear(range, callback), 'range delete');
  }

  async close(): Promise<void> {
    // Out of the set before the binding's close: a property read of a closed database dereferences
    // its freed handle (the binding checks nothing) and would crash the process at the next scrape.
    openDatabases.delete(this);
    await call((callback) => this.db.close(callback), 'close');
  }
}
