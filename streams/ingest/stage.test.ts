import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { AvroSerde, loadAvsc } from '../../schemas/index.js';
import { CachedBytesStore } from '../../state/cached-store.js';
import { int64Serde, NOT_LOADED, RocksDatabase, WindowStore } from '../../state/index.js';
import { payments } from '../../topology/fixtures/payments.js';
import type { OutputRecord, RawRecord, StreamRecord, TaskContext } from '../runtime/index.js';
import { ingestStage } from './stage.js';

/**
 * The ingest stage over a real RocksDB window store and a registry (an HTTP server answering the
 * one route the serde uses) that can fail: a record that fails on the registry changes nothing,
 * so its retry is not taken for a duplicate of itself.
 */
const EVENTS_ID = 1;
const QUALITY_ID = 2;
const MINUTE = 60_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function registry(): Promise<{ url: string; failing: Set<number> }> {
  const schemas = new Map<number, unknown>([
    [EVENTS_ID, payments.eventsSchema],
    [QUALITY_ID, loadAvsc('monitoring.quality')],
  ]);
  const failing = new Set<number>();
  const server = http.createServer((request, response) => {
    const id = Number(/\/schemas\/ids\/(\d+)/.exec(request.url ?? '')?.[1]);
    if (failing.has(id) || !schemas.has(id)) {
      response.writeHead(failing.has(id) ? 503 : 404, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ error_code: 50301, message: 'unavailable' }));
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
    response.end(JSON.stringify({ schema: JSON.stringify(schemas.get(id)) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, failing };
}

async function windowStore(): Promise<WindowStore<number>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-ingest-'));
  const db = await RocksDatabase.open(path.join(dir, 'db'));
  cleanups.push(async () => {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return new WindowStore(new CachedBytesStore(db), int64Serde, payments.dedupTtlMs);
}

describe('ingest stage', () => {
  // Before, the quality schema was first fetched when a window's report was encoded, after the
  // event's id was remembered: a registry outage then made the record's retry a "duplicate", lost.
  it('fails a record on a registry outage with nothing remembered or counted, and takes its retry as new', async () => {
    const { url, failing } = await registry();
    const metrics = createMetricsRegistry(false);
    const stage = ingestStage({
      sources: [payments],
      topicPrefix: '',
      serdeFor: (reader) => new AvroSerde(url, reader),
      schemaIds: { events: { payments: EVENTS_ID }, quality: QUALITY_ID },
      metrics,
    });
    const seenIds = await windowStore();
    const start = 1_700_000_000_000;
    // The watermark is past the record's quality window: a problem counted in it is reported at once.
    const context: TaskContext = {
      stage: 'ingest',
      task: 'raw.payments.0',
      topic: 'raw.payments',
      partition: 0,
      watermark: () => start + 5 * MINUTE,
      store: <S>() => seenIds as S,
      logger: createLogger('silent'),
    };
    const raw: RawRecord = {
      topic: 'raw.payments',
      partition: 0,
      offset: '0',
      key: Buffer.from('card-1'),
      value: Buffer.from(JSON.stringify({ id: 'p1', ts: start, card: 'card-1', amount: 12.5, merchant: 'm1' })),
      headers: {},
      timestamp: start,
    };
    const value = (await stage.decode(raw)) as Record<string, unknown>;
    const record = {
      topic: raw.topic,
      partition: 0,
      offset: '0',
      key: 'card-1',
      value,
      headers: {},
      timestamp: start,
      eventTime: start,
      sequence: 0,
      scratch: new Map<string, unknown>(),
      raw,
    } satisfies StreamRecord<Record<string, unknown>>;
    const process = async (): Promise<readonly OutputRecord[]> => (await stage.process(record, context)) as readonly OutputRecord[];
    const counted = async (name: string): Promise<number> =>
      ((await metrics.getSingleMetric(name)?.get())?.values ?? []).reduce((total, entry) => total + entry.value, 0);

    failing.add(QUALITY_ID);
    await expect(process()).rejects.toThrow(/registry/);
    expect(seenIds.peek('payments:p1', start)).not.toBe(1);
    expect(await seenIds.get('payments:p1', start)).toBeUndefined();

    failing.clear();
    const outputs = await process();
    expect(outputs.map((output) => output.topic)).toEqual(['events.payments']);
    expect(await counted('sluice_duplicates_dropped_total')).toBe(0);
    expect(seenIds.peek('payments:p1', start)).not.toBe(NOT_LOADED);
    // The same event again is a duplicate: no events record, and its window's report of the duplicate.
    expect((await process()).map((output) => output.topic)).toEqual(['monitoring.quality']);
    expect(await counted('sluice_duplicates_dropped_total')).toBe(1);
  });
});
