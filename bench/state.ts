import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { CachedBytesStore } from '../state/cached-store.js';
import { int64Serde, KeyValueStore, RocksDatabase, TaskStores, WindowStore } from '../state/index.js';
import { printTable } from './report.js';
import { retryKafka } from '../kafka/index.js';

/**
 * State store speed on this machine: RocksDB puts and gets through the `rocksdb` binding we use
 * (raw, and through the key-value store's cache), window-range scans, restore of 1,000,000 keys
 * from a changelog on the local broker, and the same puts and gets through `rocksdb-native`.
 */
const run = promisify(execFile);
const KEYS = 200_000;
const BATCH = 1_000;
const RESTORE_KEYS = 1_000_000;

type Row = Record<string, string | number>;

function rate(operation: string, count: number, started: number): Row {
  const seconds = (performance.now() - started) / 1000;
  return { operation, count, seconds: seconds.toFixed(2), 'ops/s': Math.round(count / seconds) };
}

export async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-state-'));
  const rows: Row[] = [];
  const value = Buffer.alloc(8, 1);
  try {
    const db = await RocksDatabase.open(path.join(root, 'raw'));
    let started = performance.now();
    for (let start = 0; start < KEYS; start += BATCH) {
      const operations = [];
      for (let i = start; i < start + BATCH; i++) operations.push({ type: 'put' as const, key: Buffer.from(`key-${i}`), value });
      // Unsynced, as a commit writes (see TaskStores.commitLocal).
      await db.write(operations, { sync: false });
    }
    rows.push(rate(`rocksdb: batched puts (${BATCH}/batch, unsynced)`, KEYS, started));
    started = performance.now();
    for (let start = 0; start < KEYS; start += BATCH) {
      const gets = [];
      for (let i = start; i < start + BATCH; i++) gets.push(db.get(Buffer.from(`key-${i}`)));
      await Promise.all(gets);
    }
    rows.push(rate(`rocksdb: gets (${BATCH} concurrent)`, KEYS, started));
    started = performance.now();
    for (let i = 0; i < 20_000; i++) await db.get(Buffer.from(`key-${i}`));
    rows.push(rate('rocksdb: gets (one at a time)', 20_000, started));

    const cache = new CachedBytesStore(db);
    const store = new KeyValueStore(cache, int64Serde);
    started = performance.now();
    for (let start = 0; start < KEYS; start += BATCH) {
      for (let i = start; i < start + BATCH; i++) store.put(`kv-${i}`, i);
      await cache.persistNow();
    }
    rows.push(rate('KeyValueStore: put + commit flush', KEYS, started));
    started = performance.now();
    for (let i = 0; i < 50_000; i++) await store.get(`kv-${i}`);
    rows.push(rate('KeyValueStore: get (read-modify-write path)', 50_000, started));
    await db.close();

    const windowDb = await RocksDatabase.open(path.join(root, 'windows'));
    const windowCache = new CachedBytesStore(windowDb);
    const windows = new WindowStore(windowCache, int64Serde, 7 * 86_400_000);
    for (let key = 0; key < 1_000; key++) {
      for (let hour = 0; hour < 100; hour++) windows.put(`card-${key}`, hour * 3_600_000, hour);
      await windowCache.persistNow();
    }
    started = performance.now();
    const scans = 20_000;
    for (let i = 0; i < scans; i++) {
      const from = (i % 90) * 3_600_000;
      await windows.fetch(`card-${i % 1_000}`, from, from + 9 * 3_600_000);
    }
    rows.push(rate('WindowStore: range scan of 10 windows (100k windows stored)', scans, started));
    await windowDb.close();

    rows.push(...(await nativeBinding(path.join(root, 'native'))));
    rows.push(await restore(root));
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  printTable('State stores (RocksDB) on this machine', rows);
}

/**
 * rocksdb-native in a child process: two RocksDB libraries loaded into one process hang
 * (their symbols collide), so the comparison runs beside, not inside, this one.
 */
async function nativeBinding(location: string): Promise<Row[]> {
  const script = fileURLToPath(new URL('./state-native.cjs', import.meta.url));
  const { stdout } = await run(process.execPath, [script, location], { timeout: 120_000 });
  const rateOf = (what: string): number => Number(new RegExp(`native ${what}/s (\\d+)`).exec(stdout)?.[1] ?? Number.NaN);
  return [
    { operation: `rocksdb-native: batched puts (${BATCH}/batch)`, count: KEYS, 'ops/s': rateOf('puts') },
    { operation: `rocksdb-native: batched gets (${BATCH}/batch)`, count: KEYS, 'ops/s': rateOf('gets') },
  ];
}

async function restore(root: string): Promise<Row> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  try {
    const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-state' });
    const admin = kafka.admin();
    await admin.connect();
    const topic = 'bench-counts-changelog';
    await retryKafka(() =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      }),
    );
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < RESTORE_KEYS; start += 10_000) {
      const messages = [];
      for (let i = start; i < start + 10_000; i++) messages.push({ key: `key-${i}`, value: int64Serde.serialize(i), partition: 0 });
      await producer.send({ topic, acks: -1, messages });
    }
    await producer.disconnect();
    const started = performance.now();
    const stores = await TaskStores.open({
      specs: [{ name: 'counts', kind: 'key-value', serde: int64Serde }],
      dir: path.join(root, 'restore'),
      partition: 0,
      changelogTopic: () => topic,
      kafka,
      logger,
    });
    const row = rate(`restore ${RESTORE_KEYS.toLocaleString('en')} keys from the changelog`, RESTORE_KEYS, started);
    const sample = await stores.store<KeyValueStore<number>>('counts').get('key-999999');
    if (sample !== 999_999) throw new Error(`restore check failed: ${sample}`);
    await stores.close();
    return row;
  } finally {
    await cluster.stop();
  }
}
