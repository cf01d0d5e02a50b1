import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CachedBytesStore } from '../../state/cached-store.js';
import { KeyValueStore } from '../../state/key-value-store.js';
import { RocksDatabase } from '../../state/rocksdb.js';
import { uniformRandom } from '../../common/random.js';
import { count, distinctCount, featureView, sessionWindow, slidingWindow, sum, type FeatureView } from '../../topology/features.js';
import { emptyEntityState, SourceFeatures, type SourceEvent } from './engine.js';
import { loadEntity, loadEntityNow, saveEntity, SEGMENT_EVENTS, segmentKey, TAIL_EVENTS, type StoredEntity } from './entity-history.js';
import { NOT_LOADED } from '../../state/cached-store.js';
import { entityStoreSerde } from './entity-state-serde.js';
import { payments } from '../../topology/fixtures/payments.js';

const MIN = 60_000;

const views = [
  featureView({
    name: 'hour',
    source: payments,
    window: slidingWindow('1h'),
    grace: '20m',
    features: { n: count(), total: sum('amount'), merchants: distinctCount('merchant') },
    owner: 'test',
    description: 'test',
  }),
  featureView({
    name: 'sessions',
    source: payments,
    window: sessionWindow('5m', '3h'),
    grace: '90m',
    features: { n: count(), total: sum('amount') },
    owner: 'test',
    description: 'test',
  }),
];

/** A week's count and sum of amounts, with this grace (the tests of long histories). */
function weekView(grace: string): FeatureView {
  return featureView({
    name: 'week',
    source: payments,
    window: slidingWindow('7d'),
    grace,
    features: { n: count(), total: sum('amount') },
    owner: 'test',
    description: 'test',
  });
}

/** Shows `seen` each value the store is given to put, then puts it. */
function onPut(kv: KeyValueStore<StoredEntity>, seen: (value: StoredEntity) => void): void {
  const put = kv.put.bind(kv);
  kv.put = (key, value) => {
    seen(value);
    put(key, value);
  };
}

const opened: RocksDatabase[] = [];
const dirs: string[] = [];

async function store(): Promise<{ store: KeyValueStore<StoredEntity>; bytes: CachedBytesStore }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-history-'));
  dirs.push(dir);
  const db = await RocksDatabase.open(path.join(dir, 'db'));
  opened.push(db);
  const bytes = new CachedBytesStore(db);
  return { store: new KeyValueStore(bytes, entityStoreSerde()), bytes };
}

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** Events of a few entities: mostly in time order, some late (some beyond grace), some repeated. */
function events(seed: number, total: number): SourceEvent[] {
  const random = uniformRandom(seed);
  const out: SourceEvent[] = [];
  const clocks = new Map<string, number>();
  for (let index = 0; index < total; index++) {
    const entity = `card-${Math.floor(random() * 3)}`;
    const previous = out[Math.floor(random() * out.length)];
    if (previous && random() < 0.03) {
      out.push(previous); // a replayed duplicate
      continue;
    }
    const clock = (clocks.get(entity) ?? 0) + random() * 2 * MIN;
    clocks.set(entity, clock);
    const late = random() < 0.1 ? random() * 120 * MIN : 0;
    out.push({
      entity,
      eventId: `e${index}`,
      eventTime: Math.round(clock - late),
      sequence: index,
      value: { amount: Math.round(random() * 10_000) / 100, merchant: `m${Math.floor(random() * 20)}` },
    });
  }
  return out;
}

describe('entity history in segments', () => {
  it('gives the engine the same history and rows as a state kept whole, and writes only the segments that changed', async () => {
    const { store: kv } = await store();
    const features = new SourceFeatures(payments, views, new Map());
    const whole = new Map<string, ReturnType<typeof emptyEntityState>>();
    // What each event writes: at most the head and two segments (one split in two), however long the history.
    const puts: StoredEntity[] = [];
    onPut(kv, (value) => puts.push(value));
    let saved = 0;
    let late = 0;
    let trimmed = 0;
    for (const event of events(7, 3_000)) {
      const reference = whole.get(event.entity) ?? emptyEntityState();
      whole.set(event.entity, reference);
      const expected = features.apply(reference, event);

      const loaded = await loadEntity(kv, event.entity);
      // The stored head stays as it was (an online lookup may hold it): the engine works on copies.
      const head = structuredClone(loaded.head);
      const result = features.apply(loaded.state, event);
      expect(result.rows).toEqual(expected.rows);
      expect(result.duplicate).toBe(expected.duplicate);
      expect(loaded.head).toEqual(head);
      if (result.duplicate || !result.inserted) continue;
      puts.length = 0;
      if (loaded.state.events.indexOf(result.inserted) < loaded.state.events.length - 1) late++;
      saveEntity(kv, event.entity, loaded, result.inserted);
      saved++;
      if (puts.some((value) => value.kind === 'head' && value.trim > 0)) trimmed++;
      expect(puts.filter((value) => value.kind === 'head')).toHaveLength(1);
      const segments = puts.flatMap((value) => (value.kind === 'segment' ? [value.events.length] : []));
      expect(segments.length).toBeLessThanOrEqual(2);
      for (const length of segments) expect(length).toBeLessThanOrEqual(2 * SEGMENT_EVENTS);
      expect(segments.reduce((total, length) => total + length, 0)).toBeLessThanOrEqual(2 * SEGMENT_EVENTS + 1);

      // Read back through the bytes (the cache forgotten): the same history, in segments of bounded size.
      kv.serializeDirty();
      kv.discardCache();
      const again = await loadEntity(kv, event.entity);
      expect(again.state).toEqual(reference);
      for (const segment of again.segments) {
        expect(segment.events.length - segment.skip).toBeGreaterThan(0);
        expect(segment.events.length).toBeLessThanOrEqual(2 * SEGMENT_EVENTS);
      }
    }
    // Histories of more than a few segments, and no segment left behind that no head names.
    const named = new Set<string>();
    for (const entity of whole.keys()) {
      const loaded = await loadEntity(kv, entity);
      expect(loaded.segments.length).toBeGreaterThan(2);
      for (const segment of loaded.segments) named.add(segmentKey(entity, segment.id ?? -1));
    }
    const stored = (await kv.range('\u0000')).map(([key]) => key);
    expect(new Set(stored)).toEqual(named);
    // The run covered what the layout has to handle: late events inserted before others, expiry.
    expect(saved).toBeGreaterThan(2_500);
    expect(late).toBeGreaterThan(100);
    expect(trimmed).toBeGreaterThan(1_000);
  });

  it('hands the history saved with a head to its next load: equal to the one read back from the bytes, and never one an unsaved event changed', async () => {
    const { store: kv, bytes } = await store();
    const features = new SourceFeatures(payments, views, new Map());
    /** The history array each entity's last save left. */
    const saved = new Map<string, unknown>();
    let handed = 0;
    let abandoned = 0;
    const fresh = async (entity: string): Promise<unknown> => {
      // What the store holds: read through the bytes by a store with an empty cache.
      kv.serializeDirty();
      return await loadEntity(new KeyValueStore(bytes, entityStoreSerde()), entity);
    };
    for (const [index, event] of events(7, 3_000).entries()) {
      let loaded = await loadEntity(kv, event.entity);
      if (loaded.state.events === saved.get(event.entity)) handed++;
      expect(loaded).toEqual(await fresh(event.entity));
      if (index % 97 === 0) {
        // The event changes the history in place, then fails before it is stored (a view's derive
        // throws, say): the next load must not see it.
        const changed = features.apply(loaded.state, event);
        if (!changed.duplicate) abandoned++;
        loaded = await loadEntity(kv, event.entity);
        expect(loaded).toEqual(await fresh(event.entity));
      }
      const result = features.apply(loaded.state, event);
      if (result.duplicate || !result.inserted) continue;
      saveEntity(kv, event.entity, loaded, result.inserted);
      saved.set(event.entity, loaded.state.events);
    }
    expect(handed).toBeGreaterThan(2_500);
    expect(abandoned).toBeGreaterThan(20);
  });

  it('loads without a promise only when the head and every segment it names are in memory', async () => {
    const { store: kv } = await store();
    const features = new SourceFeatures(payments, views, new Map());
    for (const event of events(11, 400)) {
      const loaded = await loadEntity(kv, event.entity);
      const result = features.apply(loaded.state, event);
      if (result.inserted && !result.duplicate) saveEntity(kv, event.entity, loaded, result.inserted);
    }
    kv.serializeDirty();
    kv.discardCache();
    expect(loadEntityNow(kv, 'card-0')).toBe(NOT_LOADED);
    // The head alone (what a chunk's prefetch reads) is not enough: its segments are not in memory.
    await kv.prefetch(['card-0']);
    const head = kv.peek('card-0');
    expect(head).toMatchObject({ kind: 'head' });
    expect(head !== NOT_LOADED && head?.kind === 'head' && head.segments.length).toBeGreaterThan(1);
    expect(loadEntityNow(kv, 'card-0')).toBe(NOT_LOADED);
    const read = await loadEntity(kv, 'card-0');
    const now = loadEntityNow(kv, 'card-0');
    expect(now).not.toBe(NOT_LOADED);
    expect(now).toEqual(read);
    // An entity with no state at all is known absent once read: an empty state, no promise.
    expect(loadEntityNow(kv, 'card-9')).toBe(NOT_LOADED);
    await kv.prefetch(['card-9']);
    expect(loadEntityNow(kv, 'card-9')).toEqual({ state: { newest: null, events: [], latest: {} }, head: undefined, segments: [] });
  });

  it('splits a segment that takes many late events, keeping the history in order', async () => {
    const { store: kv } = await store();
    const features = new SourceFeatures(payments, [weekView('7d')], new Map());
    const reference = emptyEntityState();
    const arrivals = [
      ...Array.from({ length: 3 * SEGMENT_EVENTS }, (_, index) => index * MIN),
      // All late, into the first segment's time range.
      ...Array.from({ length: 2 * SEGMENT_EVENTS }, (_, index) => 10 * MIN + index),
    ];
    let splits = 0;
    for (const [sequence, eventTime] of arrivals.entries()) {
      const event = { entity: 'card', eventId: `e${sequence}`, eventTime, sequence, value: { amount: sequence, merchant: 'm' } };
      const expected = features.apply(reference, event);
      const loaded = await loadEntity(kv, 'card');
      const result = features.apply(loaded.state, event);
      expect(result.rows).toEqual(expected.rows);
      if (!result.inserted) throw new Error('not inserted');
      const before = loaded.segments.length;
      saveEntity(kv, 'card', loaded, result.inserted);
      const after = await loadEntity(kv, 'card');
      expect(after.state).toEqual(reference);
      for (const segment of after.segments) expect(segment.events.length).toBeLessThanOrEqual(2 * SEGMENT_EVENTS);
      if (after.segments.length > before && eventTime < sequence * MIN) splits++;
    }
    expect(splits).toBeGreaterThan(0);
  });

  it('rewrites a short tail per event in time order, and merges the short segments into full ones', async () => {
    const { store: kv } = await store();
    const features = new SourceFeatures(payments, [weekView('10m')], new Map());
    const reference = emptyEntityState();
    let written = 0;
    let deleted = 0;
    onPut(kv, (value) => {
      if (value.kind === 'segment') written += value.events.length;
    });
    const remove = kv.delete.bind(kv);
    kv.delete = (key) => {
      deleted++;
      remove(key);
    };
    const EVENTS = 1_003;
    for (let sequence = 0; sequence < EVENTS; sequence++) {
      const event = {
        entity: 'card',
        eventId: `e${sequence}`,
        eventTime: sequence * MIN,
        sequence,
        value: { amount: sequence, merchant: 'm' },
      };
      features.apply(reference, event);
      const loaded = await loadEntity(kv, 'card');
      const result = features.apply(loaded.state, event);
      if (!result.inserted) throw new Error('not inserted');
      saveEntity(kv, 'card', loaded, result.inserted);
      const head = kv.peek('card');
      if (head === NOT_LOADED || head?.kind !== 'head') throw new Error('no head');
      // Full segments, then at most one full segment's worth of short ones.
      expect(head.segments.length).toBeLessThanOrEqual(Math.floor((sequence + 1) / SEGMENT_EVENTS) + SEGMENT_EVENTS / TAIL_EVENTS + 1);
    }
    // About (TAIL_EVENTS + 1) / 2 events rewritten per event, plus each merge; half a segment (32) without tails.
    expect(written / EVENTS).toBeLessThan(7);
    // The merged short segments were deleted: all but one of each run of SEGMENT_EVENTS / TAIL_EVENTS.
    expect(deleted).toBe(Math.floor(EVENTS / SEGMENT_EVENTS) * (SEGMENT_EVENTS / TAIL_EVENTS - 1));
    kv.serializeDirty();
    kv.discardCache();
    const again = await loadEntity(kv, 'card');
    expect(again.state).toEqual(reference);
    expect(again.segments.map((segment) => segment.events.length)).toEqual([
      ...Array.from({ length: Math.floor(EVENTS / SEGMENT_EVENTS) }, () => SEGMENT_EVENTS),
      ...Array.from({ length: Math.floor((EVENTS % SEGMENT_EVENTS) / TAIL_EVENTS) }, () => TAIL_EVENTS),
      EVENTS % TAIL_EVENTS,
    ]);
    expect((await kv.range('\u0000')).map(([key]) => key).sort()).toEqual(
      again.segments.map((segment) => segmentKey('card', segment.id ?? -1)).sort(),
    );
  });

  it('splits a history stored whole by an earlier version at its next event, and deletes nothing it needs', async () => {
    const { store: kv, bytes } = await store();
    const features = new SourceFeatures(payments, views, new Map());
    const reference = emptyEntityState();
    const all = Array.from({ length: 200 }, (_, index) => ({
      entity: 'card',
      eventId: `e${index}`,
      eventTime: index * MIN,
      sequence: index,
      value: { amount: index, merchant: 'm' },
    }));
    for (const event of all.slice(0, 199)) features.apply(reference, event);
    // The earlier version's JSON form of the whole state (its binary form is read the same way).
    const fields = ['amount', 'merchant'];
    bytes.put(
      Buffer.from('card'),
      Buffer.from(
        JSON.stringify({
          n: reference.newest,
          f: fields,
          e: reference.events.map((event) => [event.t, event.seq, event.newest, ...fields.map((field) => event.v[field] ?? null)]),
          l: reference.latest,
        }),
      ),
    );
    const loaded = await loadEntity(kv, 'card');
    expect(loaded.state).toEqual(reference);
    const last = all[199];
    if (!last) throw new Error('no event');
    const expected = features.apply(reference, last);
    const result = features.apply(loaded.state, last);
    expect(result.rows).toEqual(expected.rows);
    if (!result.inserted) throw new Error('not inserted');
    saveEntity(kv, 'card', loaded, result.inserted);
    kv.serializeDirty();
    kv.discardCache();
    const again = await loadEntity(kv, 'card');
    expect(again.head?.inline).toBeUndefined();
    expect(again.state).toEqual(reference);
    expect(again.segments.length).toBe(Math.ceil(reference.events.length / SEGMENT_EVENTS));
  });
});
