import { NOT_LOADED, type KeyValueStore } from '../../state/index.js';
import type { FeatureRow } from '../../topology/features.js';
import type { EntityState, HistoryEvent } from './engine.js';

/**
 * How an entity's state lies in the features stage's store: a head under the entity's own key
 * (its newest event time, latest row per view and the ids of its history's segments, in order),
 * and the history in segments of at most about SEGMENT_EVENTS events, each under its own key.
 *
 * An event changes the head and one or two segments, so a commit writes (and its changelog
 * carries) bytes in proportion to the events it took, not to the entities' histories: stored
 * whole, an entity with a week of history rewrote all of it for every event, and the stage slowed
 * down as histories grew (about 1,100 events/s after ten minutes at 5,000/s, against 3,800/s at
 * the start).
 *
 * New events go to a short tail segment of at most TAIL_EVENTS (the segment an event rewrites),
 * and the run of short segments at the end is merged into one once it holds SEGMENT_EVENTS: an
 * event in time order rewrites about 5 events on average instead of half a segment (32), and a
 * history has at most about SEGMENT_EVENTS / TAIL_EVENTS + 1 short segments.
 */
export const SEGMENT_EVENTS = 64;
export const TAIL_EVENTS = 8;

export interface EntityHead {
  readonly kind: 'head';
  newest: number | null;
  latest: Record<string, FeatureRow>;
  /** Ids of the history's segments, oldest events first. */
  segments: number[];
  /** The id the next new segment takes. */
  nextSegment: number;
  /** Events at the front of the first segment that left the history (expired): skipped, not rewritten. */
  trim: number;
  /** A history stored whole by an earlier version (read, never written): split at the next write. */
  readonly inline?: readonly HistoryEvent[];
}

export interface HistorySegment {
  readonly kind: 'segment';
  /** Sorted by time, then arrival; never changed once stored (a change writes a new object). */
  readonly events: readonly HistoryEvent[];
}

export type StoredEntity = EntityHead | HistorySegment;

/** Entity ids are the heads' keys; a segment's key starts with a NUL, which no entity id may. */
export function segmentKey(entity: string, id: number): string {
  return `\u0000${entity}\u0000${id}`;
}

export function isValidEntity(entity: string): boolean {
  return entity !== '' && !entity.startsWith('\u0000');
}

/** A stored segment as loaded: its events, of which the first `skip` are no longer in the history. */
interface LoadedSegment {
  /** Undefined for a part of a history stored whole by an earlier version (not yet a segment). */
  readonly id: number | undefined;
  readonly events: readonly HistoryEvent[];
  readonly skip: number;
}

/** An entity's state as the engine works on it, with what it was loaded from. */
export interface LoadedEntity {
  readonly state: EntityState;
  readonly head: EntityHead | undefined;
  /** The history's segments, in order. */
  readonly segments: readonly LoadedSegment[];
}

/**
 * The history each head was stored with (by `saveEntity`), taken by the entity's next load instead
 * of copying its segments' events into a new array again (the copy grew with the history: 600
 * pushes per event for a week of history at one event a second). Taken, not shared: the engine
 * changes the history in place, so an event that fails before its state is stored leaves nothing
 * here, and the next load assembles the history from the store again.
 */
const histories = new WeakMap<EntityHead, { readonly events: HistoryEvent[]; readonly segments: readonly LoadedSegment[] }>();

/** Reads an entity's head and segments (one RocksDB read for the segments not in memory). */
export async function loadEntity(store: KeyValueStore<StoredEntity>, entity: string): Promise<LoadedEntity> {
  const stored = await store.get(entity);
  if (stored?.kind === 'head' && !stored.inline) await store.prefetch(stored.segments.map((id) => segmentKey(entity, id)));
  const loaded = loadedEntityNow(store, entity, stored);
  if (loaded !== NOT_LOADED) return loaded;
  // The segments left memory between the prefetch and here (an eviction): read them one by one.
  const segments: (StoredEntity | undefined)[] = [];
  if (stored?.kind === 'head') for (const id of stored.segments) segments.push(await store.get(segmentKey(entity, id)));
  return assemble(entity, stored, segments);
}

/**
 * `loadEntity` without a promise when the head and every segment it names are in memory (a chunk's
 * prefetch loaded them); NOT_LOADED when RocksDB must be read.
 */
export function loadEntityNow(store: KeyValueStore<StoredEntity>, entity: string): LoadedEntity | typeof NOT_LOADED {
  const stored = store.peek(entity);
  return stored === NOT_LOADED ? NOT_LOADED : loadedEntityNow(store, entity, stored);
}

function loadedEntityNow(
  store: KeyValueStore<StoredEntity>,
  entity: string,
  stored: StoredEntity | undefined,
): LoadedEntity | typeof NOT_LOADED {
  if (stored?.kind !== 'head' || stored.inline) return assemble(entity, stored, []);
  // Every segment is looked up (in memory, or NOT_LOADED), also when the saved history is at hand:
  // each look-up keeps its entry recently used, and the cache's bound holds for what the history uses.
  const segments: (StoredEntity | undefined)[] = [];
  for (const id of stored.segments) {
    const segment = store.peek(segmentKey(entity, id));
    if (segment === NOT_LOADED) return NOT_LOADED;
    segments.push(segment);
  }
  const saved = histories.get(stored);
  if (saved) {
    histories.delete(stored);
    // The very segments the history was saved with (the same arrays), or it is assembled anew.
    const same =
      saved.segments.length === segments.length &&
      saved.segments.every((segment, index) => {
        const found = segments[index];
        return found?.kind === 'segment' && found.events === segment.events;
      });
    if (same)
      return {
        state: { newest: stored.newest, events: saved.events, latest: { ...stored.latest } },
        head: stored,
        segments: saved.segments,
      };
  }
  return assemble(entity, stored, segments);
}

/** The state of a head and its segments, given in the head's order (none for a history stored whole). */
function assemble(entity: string, stored: StoredEntity | undefined, stores: readonly (StoredEntity | undefined)[]): LoadedEntity {
  if (stored?.kind !== 'head') return { state: { newest: null, events: [], latest: {} }, head: undefined, segments: [] };
  const segments: LoadedSegment[] = [];
  if (stored.inline) {
    for (let start = 0; start < stored.inline.length; start += SEGMENT_EVENTS)
      segments.push({ id: undefined, events: stored.inline.slice(start, start + SEGMENT_EVENTS), skip: 0 });
  } else {
    for (const [index, id] of stored.segments.entries()) {
      const segment = stores[index];
      if (segment?.kind !== 'segment') throw new DamagedHistoryError(entity, `segment ${id} is missing`);
      const skip = index === 0 ? stored.trim : 0;
      if (skip >= segment.events.length) throw new DamagedHistoryError(entity, `segment ${id} has no event after the ${skip} trimmed`);
      segments.push({ id, events: segment.events, skip });
    }
  }
  // The engine changes the history and the latest rows in place: copies, so that the stored head
  // and segments stay as they are (an online lookup may hold this head meanwhile).
  const events: HistoryEvent[] = [];
  for (const segment of segments)
    for (let index = segment.skip; index < segment.events.length; index++) events.push(segment.events[index] as HistoryEvent);
  return { state: { newest: stored.newest, events, latest: { ...stored.latest } }, head: stored, segments };
}

/**
 * Stores the state after the engine added `inserted` (and dropped the events that left the
 * retention, from the front) to the loaded one: the head, the segments that changed, deletes for
 * those now empty or merged into another. Expiry only moves the head's trim; a segment is
 * rewritten when it takes the new event (split in two beyond 2 × SEGMENT_EVENTS), and the short
 * segments at the end when they are merged.
 */
export function saveEntity(store: KeyValueStore<StoredEntity>, entity: string, loaded: LoadedEntity, inserted: HistoryEvent): SavedEntity {
  const { state } = loaded;
  let nextSegment = loaded.head?.nextSegment ?? 0;
  // From the end: the new event is usually the newest.
  const at = state.events.lastIndexOf(inserted);
  // The old events still there are the last `kept` of the loaded history; the new one goes before the kept one at `at`.
  const kept = state.events.length - (at >= 0 ? 1 : 0);
  let drop = loaded.segments.reduce((total, segment) => total + segment.events.length - segment.skip, 0) - kept;
  /** `stored`: the segment is in the store under its id (a new one, or one of a whole history, is not). */
  const next: { id: number; events: readonly HistoryEvent[]; skip: number; changed: boolean; stored: boolean }[] = [];
  /** Index (among the kept events) of the segment's first kept event. */
  let first = 0;
  for (const segment of loaded.segments) {
    const visible = segment.events.length - segment.skip;
    if (drop >= visible) {
      drop -= visible;
      if (segment.id !== undefined) store.delete(segmentKey(entity, segment.id), { cache: false });
      continue;
    }
    let { events } = segment;
    let skip = segment.skip + drop;
    drop = 0;
    let changed = segment.id === undefined;
    const keptHere = events.length - skip;
    if (at >= first && at < first + keptHere) {
      const local = skip + at - first;
      events = [...events.slice(skip, local), inserted, ...events.slice(local)];
      skip = 0;
      changed = true;
    }
    first += keptHere;
    next.push({ id: segment.id ?? nextSegment++, events, skip, changed, stored: segment.id !== undefined });
  }
  if (at === kept) {
    // After every kept event: at the end of the last segment while it is short, else in a new one.
    const last = next.at(-1);
    if (last && last.events.length - last.skip < TAIL_EVENTS) {
      last.events = [...last.events.slice(last.skip), inserted];
      last.skip = 0;
      last.changed = true;
    } else {
      next.push({ id: nextSegment++, events: [inserted], skip: 0, changed: true, stored: false });
    }
  }
  const placed: typeof next = [];
  for (const segment of next) {
    const events = segment.changed ? segment.events.slice(segment.skip) : segment.events;
    const skip = segment.changed ? 0 : segment.skip;
    if (events.length - skip <= 2 * SEGMENT_EVENTS) {
      placed.push({ ...segment, events, skip });
      continue;
    }
    // A segment that took many late events is split in two.
    const half = Math.ceil(events.length / 2);
    placed.push({ ...segment, events: events.slice(0, half), skip: 0, changed: true });
    placed.push({ id: nextSegment++, events: events.slice(half), skip: 0, changed: true, stored: false });
  }
  // The short segments at the end, once they hold a full segment's events, become one.
  let run = placed.length;
  let runEvents = 0;
  for (; run > 0; run--) {
    const segment = placed[run - 1];
    if (!segment || segment.events.length - segment.skip >= SEGMENT_EVENTS) break;
    runEvents += segment.events.length - segment.skip;
  }
  const runFirst = placed[run];
  if (runFirst && placed.length - run >= 2 && runEvents >= SEGMENT_EVENTS) {
    const merged = placed.splice(run);
    for (const segment of merged.slice(1)) if (segment.stored) store.delete(segmentKey(entity, segment.id), { cache: false });
    placed.push({ ...runFirst, events: merged.flatMap((segment) => segment.events.slice(segment.skip)), skip: 0, changed: true });
  }
  for (const segment of placed) if (segment.changed) putSegment(store, entity, segment.id, segment.events);
  const head: EntityHead = {
    kind: 'head',
    newest: state.newest,
    latest: state.latest,
    segments: placed.map((segment) => segment.id),
    nextSegment,
    // Only the first segment is ever trimmed: expiry drops events from the front.
    trim: placed[0]?.skip ?? 0,
  };
  store.put(entity, head);
  // The history is exactly the placed segments' events after their skips: the next load takes it.
  const segments = placed.map(({ id, events, skip }) => ({ id, events, skip }));
  histories.set(head, { events: state.events, segments });
  return { head, segments };
}

/** What `saveEntity` stored: the head, and the segments it names with their events (those before `skip` expired). */
export interface SavedEntity {
  readonly head: EntityHead;
  readonly segments: readonly { readonly id: number; readonly events: readonly HistoryEvent[]; readonly skip: number }[];
}

/**
 * Stores a segment. A full one (SEGMENT_EVENTS or more) is not kept in the store's cache once
 * committed: an event in time order never rewrites it, and reads it again only when a window's
 * start or the expiry reaches it (`entity-append.ts`). The short ones at the end stay: the next
 * events rewrite the last, and merge them all.
 */
export function putSegment(store: KeyValueStore<StoredEntity>, entity: string, id: number, events: readonly HistoryEvent[]): void {
  store.put(segmentKey(entity, id), { kind: 'segment', events }, { cache: events.length < SEGMENT_EVENTS });
}

/** The head and the segments it names do not fit together: the state is damaged. */
export class DamagedHistoryError extends Error {
  constructor(entity: string, detail: string) {
    super(`the history of entity ${entity} in the features store is damaged: ${detail}`);
    this.name = 'DamagedHistoryError';
  }
}
