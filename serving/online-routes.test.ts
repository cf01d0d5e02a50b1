import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../common/metrics.js';
import type { EntityState } from '../streams/features/engine.js';
import type { RunningStage } from '../streams/runtime/index.js';
import { count, featureView, slidingWindow, source } from '../topology/index.js';
import { serveOps, type OpsServer } from './ops-server.js';
import { OnlineStore, onlineRoutes } from './online.js';

const cards = source({
  name: 'cards',
  schema: {
    type: 'record',
    name: 'Card',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'card_id', type: 'string' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  idField: 'id',
  eventTimeField: 'timestamp',
  entityField: 'card_id',
  description: 'test',
});
const view = featureView({
  name: 'card_1h',
  source: cards,
  window: slidingWindow('1h'),
  features: { n: count() },
  owner: 't',
  description: 't',
});

describe('GET and POST /features', () => {
  let server: OpsServer;
  let online: OnlineStore;
  let reads = 0;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    // A features stage that owns every key; the state of card-1 has one row of card_1h.
    const state: EntityState = {
      newest: 1_000,
      events: [],
      latest: {
        card_1h: { view: 'card_1h', version: 1, entity: 'card-1', eventId: 'e1', eventTime: 1_000, sequence: 1, values: { n: 3 } },
      },
    } as unknown as EntityState;
    const stage = {
      query: async (_store: string, key: string) => {
        reads++;
        if (key === 'slow') await new Promise<void>((resolve) => (release = resolve));
        return { owned: true, partition: 0, value: key === 'card-1' ? state : undefined };
      },
    } as unknown as RunningStage;
    online = new OnlineStore(stage, [view], '');
    server = await serveOps(createMetricsRegistry(false), { live: () => true, ready: () => true, detail: () => ({}) }, '127.0.0.1', 0, [
      onlineRoutes(() => online),
    ]);
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers a lookup, and 400 for a malformed path or time, 404 for an unknown view', async () => {
    const found = await fetch(`${server.url}/features/card_1h/card-1?at=2000`);
    expect(await found.json()).toMatchObject({ status: 'PRESENT', values: { n: 3 } });
    expect((await fetch(`${server.url}/features/card_1h/%E0%A4%A`)).status).toBe(400);
    expect((await fetch(`${server.url}/features/card_1h/card-1?at=12abc`)).status).toBe(400);
    expect((await fetch(`${server.url}/features/card_1h/card-1?at=99999999999999999999`)).status).toBe(400);
    expect((await fetch(`${server.url}/features/nope/card-1`)).status).toBe(404);
  });

  it('checks the types of a batch request', async () => {
    const post = (body: unknown) => fetch(`${server.url}/features`, { method: 'POST', body: JSON.stringify(body) });
    expect((await post({ views: ['card_1h'], entities: ['card-1'] })).status).toBe(200);
    for (const bad of [
      { views: 'card_1h', entities: ['x'] },
      { views: ['card_1h'], entities: [1] },
      { views: ['card_1h'], entities: ['x'], at: 1.5 },
      { views: ['card_1h'], entities: ['x'], extra: 1 },
    ])
      expect((await post(bad)).status).toBe(400);
  });

  it('shares one read of an entity among lookups that arrive while it is in flight', async () => {
    const before = reads;
    const lookups = Array.from({ length: 20 }, () => online.get('card_1h', 'slow'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    release?.();
    const answers = await Promise.all(lookups);
    expect(answers.every((answer) => answer.status === 'NOT_FOUND')).toBe(true);
    expect(reads - before).toBe(1);
    // Once answered, the next lookup reads again: nothing is cached.
    await online.get('card_1h', 'card-1');
    expect(reads - before).toBe(2);
  });
});
