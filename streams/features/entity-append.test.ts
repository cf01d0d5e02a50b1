import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { uniformRandom } from '../../common/random.js';
import { CacheBudget } from '../../state/cache-budget.js';
import { CachedBytesStore } from '../../state/cached-store.js';
import { KeyValueStore } from '../../state/key-value-store.js';
import { NOT_LOADED } from '../../state/index.js';
import { RocksDatabase } from '../../state/rocksdb.js';
import {
  count,
  distinctCount,
  featureView,
  hoppingWindow,
  last,
  max,
  mean,
  min,
  sessionWindow,
  slidingWindow,
  stddev,
  sum,
  tumblingWindow,
  type FeatureRow,
  type FeatureView,
} from '../../topology/features.js';
import { payments } from '../../topology/fixtures/payments.js';
import { SourceFeatures, type SourceEvent } from './engine.js';
import { appendCounts, appendInOrder, keepWindows, keptBytes } from './entity-append.js';
import { loadEntity, saveEntity, segmentKey, type StoredEntity } from './entity-history.js';
import { entityStoreSerde } from './entity-state-serde.js';

const MIN = 60_000;

const every = { n: count(), total: sum('amount'), avg: mean('amount'), low: min('amount'), high: max('amount') };
const views: FeatureView[] = [
  featureView({
    name: 'short',
    source: payments,
    window: slidingWindow('20m'),
    grace: '5m',
    features: { ...every, latest: last('amount'), merchants: distinctCount('merchant'), spread: stddev('amount') },
    owner: 'test',
    description: 'test',
  }),
  featureView({
    name: 'long',
    source: payments,
    window: slidingWindow('3h'),
    grace: '30m',
    features: { n: count(), total: sum('amount'), high: max('amount'), spread: stddev('amount') },
    owner: 'test',
    description: 'test',
  }),
  featureView({
    name: 'hops',
    source: payments,
    window: hoppingWindow('30m', '10m'),
    features: { ...every, merchants: distinctCount('merchant') },
    owner: 'test',
    description: 'test',
  }),
  featureView({
    name: 'blocks',
    source: payments,
    window: tumblingWindow('15m'),
    grace: '2m',
    features: { n: count(), low: min('amount') },
    derive: ({ n, low }) => ({ scaled: typeof n === 'number' && typeof low === 'number' ? n * low : null }),
    owner: 'test',
    description: 'test',
  }),
];

const opened: RocksDatabase[] = [];
const dirs: string[] = [];

/**
 * A store over real RocksDB; `cacheLimit` entries at most in memory (a small one evicts all the
 * time); with a budget, bounded by bytes as the features stage's store is, the kept windows counted
 * unless `countKept` is false.
 */
async function store(cacheLimit?: number, budget?: CacheBudget, countKept = true): Promise<KeyValueStore<StoredEntity>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-append-'));
  dirs.push(dir);
  const db = await RocksDatabase.open(path.join(dir, 'db'));
  opened.push(db);
  return new KeyValueStore(new CachedBytesStore(db), entityStoreSerde(), cacheLimit, budget, countKept ? keptBytes : undefined);
}

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/**
 * Events of a few entities: mostly in time order (a minute or two apart, now and then an hour's
 * gap), some at the same time as the one before, some late (within a view's grace or beyond it),
 * some replayed (the entity's newest among them); amounts with nulls, NaN, ±0, and (`unsquared`)
 * values too large or too small for exact squares.
 */
function events(seed: number, total: number, entities: number, unsquared: boolean): SourceEvent[] {
  const random = uniformRandom(seed);
  const out: SourceEvent[] = [];
  const clocks = new Map<string, number>();
  const newestOf = new Map<string, SourceEvent>();
  const odd = [null, Number.NaN, 0, -0, ...(unsquared ? [1e300, -1e-200, 5e-324] : [])];
  for (let index = 0; index < total; index++) {
    const entity = `card-${Math.floor(random() * entities)}`;
    const previous = out[Math.floor(random() * out.length)];
    if (previous && random() < 0.02) {
      out.push(previous);
      continue;
    }
    // The entity's newest event replayed: a duplicate at the newest time.
    const newest = newestOf.get(entity);
    if (newest && random() < 0.01) {
      out.push(newest);
      continue;
    }
    const roll = random();
    // Whole minutes half of the time: events then fall exactly on window starts and expiry horizons.
    const grid = random() < 0.5;
    const step = roll < 0.05 ? 0 : roll < 0.08 ? 70 * MIN : grid ? Math.floor(random() * 3 + 1) * MIN : random() * 2.5 * MIN;
    // A multiple of every window's advance to start from: whole minutes then fall on window starts.
    const previousClock = clocks.get(entity) ?? 1_700_000_400_000;
    const clock = grid ? Math.round((previousClock + step) / MIN) * MIN : previousClock + step;
    clocks.set(entity, clock);
    const late = random() < 0.06 ? (grid ? Math.floor(random() * 60) * MIN : random() * 60 * MIN) : 0;
    const amount = random() < 0.02 ? (odd[Math.floor(random() * odd.length)] ?? null) : Math.round(random() * 100_000) / 100;
    const next: SourceEvent = {
      entity,
      eventId: `e${index}`,
      eventTime: Math.round(clock - late),
      sequence: index,
      value: { amount, merchant: random() < 0.05 ? null : `m${Math.floor(random() * 30)}` },
    };
    out.push(next);
    if (next.eventTime >= (newestOf.get(entity)?.eventTime ?? Number.NEGATIVE_INFINITY)) newestOf.set(entity, next);
  }
  return out;
}

/** Rows compared bit for bit: each number as its float64 bits (so −0, NaN and the last bit count). */
function bits(rows: readonly FeatureRow[]): string {
  const view = new DataView(new ArrayBuffer(8));
  return JSON.stringify(rows, (_key, value: unknown) => {
    if (typeof value !== 'number') return value;
    view.setFloat64(0, value);
    return `f${view.getBigUint64(0).toString(16)}`;
  });
}

/** Every stored entry, serialized: two stores that hold the same bytes under the same keys compare equal. */
async function contents(kv: KeyValueStore<StoredEntity>): Promise<Map<string, string>> {
  const serde = entityStoreSerde();
  return new Map((await kv.range()).map(([key, value]) => [key, serde.serialize(value).toString('hex')]));
}

/** The general path alone: the whole history for every event. */
async function general(kv: KeyValueStore<StoredEntity>, features: SourceFeatures, event: SourceEvent): Promise<FeatureRow[]> {
  const loaded = await loadEntity(kv, event.entity);
  const result = features.apply(loaded.state, event);
  if (result.duplicate || !result.inserted) return [];
  saveEntity(kv, event.entity, loaded, result.inserted);
  return result.rows;
}

/** As the features stage does: in order without the history where it can, else the general path, which keeps the windows. */
async function staged(kv: KeyValueStore<StoredEntity>, features: SourceFeatures, event: SourceEvent): Promise<FeatureRow[]> {
  const appended = await appendInOrder(kv, event.entity, features, event);
  if (appended) return appended.rows;
  const loaded = await loadEntity(kv, event.entity);
  const result = features.apply(loaded.state, event);
  if (result.duplicate || !result.inserted) return [];
  keepWindows(features, saveEntity(kv, event.entity, loaded, result.inserted), loaded.state.events);
  return result.rows;
}

async function compare(
  seed: number,
  total: number,
  entities: number,
  {
    cacheLimit,
    budget,
    unsquared = false,
    chosen = views,
    dropCacheEvery,
    given,
  }: {
    cacheLimit?: number;
    budget?: CacheBudget;
    unsquared?: boolean;
    chosen?: FeatureView[];
    dropCacheEvery?: number;
    given?: SourceEvent[];
  },
) {
  const reference = await store();
  const tested = await store(cacheLimit, budget);
  const referenceFeatures = new SourceFeatures(payments, chosen, new Map());
  const testedFeatures = new SourceFeatures(payments, chosen, new Map());
  const before = { ...appendCounts };
  let failed = 0;
  for (const [index, event] of (given ?? events(seed, total, entities, unsquared)).entries()) {
    // A row that fails (a derived feature throwing) fails on both paths, and neither stores the event.
    const expected = await general(reference, referenceFeatures, event).catch((error: unknown) => error);
    const rows = await staged(tested, testedFeatures, event).catch((error: unknown) => error);
    if (expected instanceof Error) {
      expect(rows, `event ${index}`).toEqual(expected);
      failed++;
    } else {
      expect(bits(rows as FeatureRow[]), `event ${index}`).toBe(bits(expected as FeatureRow[]));
    }
    // The entity's head, as stored: its segments, trim and latest rows.
    const head = async (kv: KeyValueStore<StoredEntity>) => {
      const value = await kv.get(event.entity);
      return value && entityStoreSerde().serialize(value).toString('hex');
    };
    expect(await head(tested), `the head after event ${index}`).toBe(await head(reference));
    // A commit's serialization now and then: clean entries may then be evicted.
    if (index % 7 === 0) {
      reference.serializeDirty();
      tested.serializeDirty();
    }
    if (dropCacheEvery !== undefined && index % dropCacheEvery === dropCacheEvery - 1) {
      tested.serializeDirty();
      tested.discardCache();
    }
    if (index % 500 === 499) expect(await contents(tested), `after event ${index}`).toEqual(await contents(reference));
  }
  expect(await contents(tested)).toEqual(await contents(reference));
  // Kept state always describes the stored history (a slip would only send events to the general path).
  expect(appendCounts.mismatched - before.mismatched).toBe(0);
  return {
    appended: appendCounts.appended - before.appended,
    handedBack: appendCounts.handedBack - before.handedBack,
    reads: appendCounts.reads - before.reads,
    failed,
    tested,
  };
}

describe('appendInOrder', () => {
  it('gives the general path’s rows bit for bit and stores the same bytes, with the windows kept in memory', async () => {
    const total = 4_000;
    const { appended, handedBack } = await compare(11, total, 4, {});
    // 87% of the events are in order: those must have taken the kept windows (the first of each
    // entity and those after a late, tied or replayed one cannot).
    expect(appended).toBeGreaterThan(total * 0.7);
    expect(handedBack).toBe(0);
  });

  it('leaves an event to the general path, before taking anything, when a stddev would read the members (values beyond exact squares)', async () => {
    const { appended, handedBack } = await compare(17, 3_000, 4, { unsquared: true });
    expect(appended).toBeGreaterThan(300);
    expect(handedBack).toBe(0);
  });

  it('reads the segments it needs when the cache has evicted them, and stays exact', async () => {
    const total = 3_000;
    const { appended, reads } = await compare(23, total, 6, { cacheLimit: 12 });
    expect(appended).toBeGreaterThan(total * 0.3);
    expect(reads).toBeGreaterThan(100);
  });

  it('reads no segment but the tail while no member leaves a window: the first full segment is not read again', async () => {
    // One card, an event a minute for 150 minutes: the 3 h window never slides, and after 64 events
    // the first segment is full (not cached once committed; every 7th event serializes).
    const total = 150;
    const given = Array.from({ length: total }, (_, index): SourceEvent => ({
      entity: 'card-0',
      eventId: `e${index}`,
      eventTime: 1_700_000_400_000 + index * MIN,
      sequence: index,
      value: { amount: index + 0.5, merchant: `m${index % 7}` },
    }));
    const { appended, reads, tested } = await compare(0, total, 1, { chosen: views.filter((view) => view.name === 'long'), given });
    expect(appended).toBe(total - 1);
    expect(reads).toBe(0);
    // The premise: the first segment is full and out of the cache (reading it would have counted).
    const head = tested.peek('card-0');
    if (head === NOT_LOADED || head?.kind !== 'head') throw new Error('the head is not in memory');
    expect(head.segments.length).toBeGreaterThan(1);
    expect(tested.peek(segmentKey('card-0', head.segments[0] as number))).toBe(NOT_LOADED);
  });

  it('counts the kept windows with their head in the cache budget: their distinct-value tables and queues of extremes', async () => {
    // One card, an event a minute, a new merchant each time: 180 merchants in the 3 h window once it slides.
    const wide = featureView({
      name: 'wide',
      source: payments,
      window: slidingWindow('3h'),
      features: { merchants: distinctCount('merchant'), high: max('amount') },
      owner: 'test',
      description: 'test',
    });
    const features = new SourceFeatures(payments, [wide], new Map());
    const counted = await store(undefined, new CacheBudget(1 << 30));
    const uncounted = await store(undefined, new CacheBudget(1 << 30), false);
    for (let index = 0; index < 300; index++) {
      const event: SourceEvent = {
        entity: 'card-0',
        eventId: `e${index}`,
        eventTime: 1_700_000_400_000 + index * MIN,
        sequence: index,
        value: { amount: 1_000 - index, merchant: `m${index}` },
      };
      await staged(counted, features, event);
      await staged(uncounted, features, event);
    }
    counted.serializeDirty();
    uncounted.serializeDirty();
    const head = counted.peek('card-0');
    if (head === NOT_LOADED || head?.kind !== 'head') throw new Error('the head is not in memory');
    // 180 merchants in the window (3 h of one a minute), in a table of at least 240 slots of 12
    // bytes; and 180 candidates for the max (amounts fall), 16 bytes each.
    expect(keptBytes(head)).toBeGreaterThanOrEqual(240 * 12 + 180 * 16);
    expect(counted.cachedBytes - uncounted.cachedBytes).toBe(keptBytes(head));
    // A segment holds nothing beside it.
    expect(keptBytes(await counted.get(segmentKey('card-0', head.segments[0] as number)))).toBe(0);
  });

  it('stays exact while the budget, counting the kept windows, evicts heads', async () => {
    const total = 3_000;
    const budget = new CacheBudget(6_000);
    const { appended } = await compare(41, total, 8, { budget });
    // Evictions happened, and events still took the kept windows in between.
    expect(budget.evictedEntries).toBeGreaterThan(100);
    expect(appended).toBeGreaterThan(total * 0.3);
  });

  it('starts again from the general path after the cache is dropped (an aborted transaction)', async () => {
    const total = 2_000;
    const { appended } = await compare(29, total, 3, { dropCacheEvery: 97 });
    expect(appended).toBeGreaterThan(total * 0.6);
  });

  it('leaves nothing half done when a derived feature throws', async () => {
    const picky = featureView({
      name: 'picky',
      source: payments,
      window: slidingWindow('30m'),
      features: { n: count(), total: sum('amount') },
      derive: ({ n }) => {
        if (n === 9) throw new Error('nine');
        return { twice: typeof n === 'number' ? 2 * n : null };
      },
      owner: 'test',
      description: 'test',
    });
    const { appended, failed } = await compare(31, 2_000, 3, { chosen: [...views, picky] });
    expect(failed).toBeGreaterThan(10);
    expect(appended).toBeGreaterThan(500);
  });

  it('leaves every event of a source with session windows to the general path', async () => {
    const sessions = featureView({
      name: 'sessions',
      source: payments,
      window: sessionWindow('10m', '2h'),
      features: { n: count(), total: sum('amount') },
      owner: 'test',
      description: 'test',
    });
    const { appended } = await compare(5, 600, 3, { chosen: [views[0] as FeatureView, sessions] });
    expect(appended).toBe(0);
  });
});
