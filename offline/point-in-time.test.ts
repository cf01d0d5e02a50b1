import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyEntityState, SourceFeatures, type FeatureRow } from '../streams/features/engine.js';
import { featureVector } from '../streams/features/stage.js';
import { count, featureView, last, slidingWindow, sum } from '../topology/features.js';
import { ChdbEngine } from './chdb-engine.js';
import { pointInTimeJoin, pointInTimeSql, type Label } from './point-in-time.js';
import { EmbeddedOfflineStore } from './store.js';
import { ensureTables, featureTable, insertNew } from './tables.js';
import { payments } from '../topology/fixtures/payments.js';

const MIN = 60_000;
const spend = featureView({
  name: 'spend_1h',
  source: payments,
  window: slidingWindow('1h'),
  features: { n: count(), total: sum('amount'), latest: last('amount') },
  grace: '1h',
  ttl: '30m',
  owner: 'test',
  description: 'test',
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pit-'));
const store = new EmbeddedOfflineStore(new ChdbEngine(dir));
const table = featureTable(spend);

/** Rows of events (entity, minute, amount) fed in this arrival order, through the live code. */
function rowsOf(events: [string, number, number][], version = 1): FeatureRow[] {
  const features = new SourceFeatures(payments, [spend], new Map([[spend.name, version]]));
  const states = new Map<string, ReturnType<typeof emptyEntityState>>();
  return events.flatMap(([entity, minute, amount], index) => {
    const state = states.get(entity) ?? emptyEntityState();
    states.set(entity, state);
    return features.apply(state, { entity, eventId: `${entity}-${index}`, eventTime: minute * MIN, sequence: index, value: { amount } })
      .rows;
  });
}

async function load(rows: FeatureRow[]): Promise<void> {
  await insertNew(
    store,
    table,
    rows.map((row) =>
      table.toRow(featureVector(row), { partition: 0, offset: String(row.sequence), timestamp: 0, key: null, headers: {} }),
    ),
  );
}

beforeAll(async () => {
  await ensureTables(store, [table]);
});

afterAll(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('point-in-time training sets', () => {
  it('never sees an event after the label time, and SQL and replay agree', async () => {
    // c1: events at 10, 20 (20 arrives twice at the same time), then 31 — just after the label at 30.
    // c2: an event at 50 arrives before an older one at 25 (out of order); label at 40.
    // c3: last event at 0, label at 45: older than the 30-minute TTL → missing.
    // c4: no events at all.
    const rows = rowsOf([
      ['c1', 10, 1],
      ['c1', 20, 2],
      ['c1', 20, 4],
      ['c1', 31, 1000],
      ['c2', 50, 500],
      ['c2', 25, 8],
      ['c3', 0, 3],
    ]);
    await load(rows);
    const labels: Label[] = [
      { label_id: 'a', entity_id: 'c1', label_time: 30 * MIN, label: 1 },
      { label_id: 'b', entity_id: 'c1', label_time: 31 * MIN - 1, label: 0 },
      { label_id: 'c', entity_id: 'c1', label_time: 31 * MIN, label: 1 },
      { label_id: 'd', entity_id: 'c2', label_time: 40 * MIN, label: 0 },
      { label_id: 'e', entity_id: 'c3', label_time: 45 * MIN, label: 0 },
      { label_id: 'f', entity_id: 'c4', label_time: 45 * MIN, label: 0 },
      { label_id: 'g', entity_id: 'c1', label_time: 9 * MIN, label: 0 },
    ];
    const requests = [{ view: spend, version: 1 }];
    const bySql = await pointInTimeSql(store, labels, requests);
    const byReplay = pointInTimeJoin(rows, labels, requests);
    expect(bySql).toEqual(byReplay);
    const values = Object.fromEntries(bySql.map((row) => [row.label_id, row.features]));
    // At 30: 10, 20 and the second 20 (last to arrive) — never the 1000 at 31.
    expect(values.a).toEqual({ 'spend_1h.n': 3, 'spend_1h.total': 7, 'spend_1h.latest': 4 });
    expect(values.b).toEqual(values.a);
    expect(values.c).toEqual({ 'spend_1h.n': 4, 'spend_1h.total': 1007, 'spend_1h.latest': 1000 });
    // c2 at 40: the event at 25 (its row holds only itself: 50 is later) — not the one at 50.
    expect(values.d).toEqual({ 'spend_1h.n': 1, 'spend_1h.total': 8, 'spend_1h.latest': 8 });
    expect(values.e).toEqual({ 'spend_1h.n': null, 'spend_1h.total': null, 'spend_1h.latest': null });
    expect(values.f).toEqual(values.e);
    expect(values.g).toEqual(values.e);
  });

  it('uses the requested definition version only, and loading twice changes nothing', async () => {
    const rows = rowsOf([['v1', 10, 5]], 2);
    await load(rows);
    await load(rows);
    const [count] = await store.query<{ n: string }>(`SELECT count() AS n FROM ${table.name} WHERE entity_id = 'v1'`);
    expect(Number(count?.n)).toBe(1);
    const labels = [{ label_id: 'x', entity_id: 'v1', label_time: 20 * MIN, label: 1 }];
    expect((await pointInTimeSql(store, labels, [{ view: spend, version: 1 }]))[0]?.features['spend_1h.n']).toBeNull();
    expect((await pointInTimeSql(store, labels, [{ view: spend, version: 2, features: ['n'] }]))[0]?.features).toEqual({ 'spend_1h.n': 1 });
    expect(pointInTimeJoin(rows, labels, [{ view: spend, version: 2, features: ['n'] }])[0]?.features).toEqual({ 'spend_1h.n': 1 });
  });
});
