import { NOT_LOADED, type KeyValueStore } from '../../state/index.js';
import type { FeatureRow, FeatureView } from '../../topology/features.js';
import { lookBack } from '../runtime/windows/window.js';
import { isLate, type HistoryEvent, type SourceEvent, type SourceFeatures } from './engine.js';
import {
  putSegment,
  SEGMENT_EVENTS,
  segmentKey,
  TAIL_EVENTS,
  type EntityHead,
  type SavedEntity,
  type StoredEntity,
} from './entity-history.js';
import { WindowAggregates } from './window-aggregates.js';

/**
 * An entity's next event in time order, without its history in memory: the work and the memory of
 * such an event do not grow with the history.
 *
 * The features stage's general path (`loadEntity`, `SourceFeatures.apply`, `saveEntity`) reads an
 * entity's whole history, because an event may arrive late, in the middle of it. An event newer
 * than every other of its entity needs much less: each view's window of the newest event so far,
 * slid forward (its oldest members leave, the event joins), and the segments at the history's two
 * ends. After the general path stores an entity, `keepWindows` keeps those windows in memory with
 * the stored head (not stored themselves: a head read back from RocksDB has none, and its next
 * event takes the general path, which keeps them again). `appendInOrder` then takes an in-order
 * event with them, reading only
 *
 * - the tail segment, which takes the event (and the short ones before it when they are merged);
 * - a segment at a window's start, only when members leave the window from it (the kept time of
 *   the window's first member says whether any does);
 * - the first segment, only when events expire from it.
 *
 * The rows are the general path's, bit for bit (every aggregate is a function of its window's
 * members alone), and the stored head and segments are what `saveEntity` stores for the same event.
 * Anything else (a late or tied event, no windows kept, a segment that would be split, a stddev
 * over values too large or too small for exact squares) is left to the general path.
 */

/** An event's place in a stored history: a segment (by its place in the head's list) and an index in its events. */
interface Cursor {
  readonly segment: number;
  readonly index: number;
}

/**
 * A view's window of the newest event, the first event in the window's time range, and that
 * event's time: while it stays in the window, an event reads no segment for this view (in a long
 * window, such as a day's, the first member's segment would otherwise be read by every event).
 */
interface KeptWindow {
  readonly window: WindowAggregates;
  readonly first: Cursor;
  readonly firstTime: number;
}

/** What a stored head's next in-order event needs, besides the head. */
interface KeptState {
  /** The views' computation they were kept for (another stage's views over the same head would not fit). */
  readonly features: SourceFeatures;
  /** The count of events in each of the head's segments (a trimmed first segment's expired ones included). */
  readonly counts: readonly number[];
  /** The time of the history's oldest event. */
  readonly oldest: number;
  /** Per view of the source, in its order. */
  readonly windows: readonly KeptWindow[];
}

/**
 * By the stored head object they go with. Taken, not shared: an event takes them before it changes
 * them, so one that fails halfway leaves none behind, and the next event takes the general path.
 * A head dropped from the store's cache (an eviction, a discarded transaction) takes them along.
 */
const kept = new WeakMap<EntityHead, KeptState>();

/**
 * The bytes a stored head's kept windows hold in memory (their distinct-value tables and queues of
 * extremes), 0 for any other value: the features store counts them with the head in the state
 * cache's budget, so that the budget bounds them too, and an entity evicted for them takes the
 * general path at its next event (which keeps its windows again).
 */
export function keptBytes(value: unknown): number {
  const state = kept.get(value as EntityHead);
  if (!state) return 0;
  let bytes = 0;
  for (const { window } of state.windows) bytes += window.heldBytes;
  return bytes;
}

/** Segments read together when one is missing: itself and those after it. */
const READ_TOGETHER = SEGMENT_EVENTS / TAIL_EVENTS;

/** How many times segments are read before an event is left to the general path. */
const MAX_READS = 4;

/**
 * For tests: events `appendInOrder` stored (`appended`), events it handed back to the general path
 * after taking the kept state (`handedBack`), its reads of segments not in memory (`reads`), and
 * slips (`mismatched`: never expected): kept state found not to describe the stored history, or a
 * stored layout `keepWindows` could not place the history in. The event (or, for the latter, the
 * entity's next one) takes the general path, which is exact, so only this count shows a slip.
 */
export const appendCounts = { appended: 0, handedBack: 0, reads: 0, mismatched: 0 };

/**
 * After the general path stored an entity (`saveEntity`): keeps each view's window of its newest
 * event for the next in-order event. `events` is the history it stored.
 */
export function keepWindows(features: SourceFeatures, saved: SavedEntity, events: readonly HistoryEvent[]): void {
  if (!features.looksBack || events.length === 0) return;
  const { segments } = saved;
  const starts: number[] = [];
  let total = 0;
  for (const segment of segments) {
    starts.push(total);
    total += segment.events.length - segment.skip;
  }
  // Not the history just stored (never expected): nothing kept, and the next event takes the general
  // path. Not an error: the event is stored already, and a retry would find it a duplicate.
  if (total !== events.length) {
    appendCounts.mismatched++;
    return;
  }
  const cursorAt = (position: number): Cursor => {
    let segment = segments.length - 1;
    while ((starts[segment] as number) > position) segment--;
    return { segment, index: (segments[segment]?.skip ?? 0) + position - (starts[segment] as number) };
  };
  kept.set(saved.head, {
    features,
    counts: segments.map((segment) => segment.events.length),
    oldest: (events[0] as HistoryEvent).t,
    windows: features
      .newestWindows(events)
      .map(({ window, first }) => ({ window, first: cursorAt(first), firstTime: (events[first] as HistoryEvent).t })),
  });
}

/** An in-order event's rows. */
export interface Appended {
  readonly rows: FeatureRow[];
}

/**
 * Computes and stores an entity's event when no other is newer (and it is not a replayed one) and
 * the entity's windows are kept; undefined when the event is for the general path (nothing changed
 * then). A source with a session-window view leaves all its events to the general path: a session
 * window is not found by looking back from the event's time.
 */
export function appendInOrder(
  store: KeyValueStore<StoredEntity>,
  entity: string,
  features: SourceFeatures,
  event: SourceEvent,
): Appended | undefined | Promise<Appended | undefined> {
  const head = store.peek(entity);
  if (head === NOT_LOADED || head?.kind !== 'head') return undefined;
  return attempt(store, entity, features, event, head, 0);
}

function attempt(
  store: KeyValueStore<StoredEntity>,
  entity: string,
  features: SourceFeatures,
  event: SourceEvent,
  head: EntityHead,
  reads: number,
): Appended | undefined | Promise<Appended | undefined> {
  const state = kept.get(head);
  if (state?.features !== features || head.newest === null || !(event.eventTime >= head.newest)) return undefined;
  const plan = planAppend(store, entity, features, event, head, state);
  if (plan === undefined) return undefined;
  if (plan.kind === 'missing') {
    if (reads >= MAX_READS) return undefined;
    appendCounts.reads++;
    // The segments it needs, read in one call; the same head must still be the stored one.
    return store
      .prefetch(plan.keys)
      .then(() => (store.peek(entity) === head ? attempt(store, entity, features, event, head, reads + 1) : undefined));
  }
  kept.delete(head);
  const appended = carryOut(store, entity, features, event, head, state, plan);
  if (appended) appendCounts.appended++;
  else appendCounts.handedBack++;
  return appended;
}

// ---- the plan: what changes, found without changing anything -----------------------------------

interface ViewPlan {
  readonly start: number;
  readonly end: number;
  /** Every member leaves (the window starts after the newest event so far): a new window. */
  readonly reset: boolean;
  /** The members that leave, oldest first. */
  readonly leaving: readonly HistoryEvent[];
  /** The members before any leaves, for a window that starts sliding now (`WindowAggregates.startSliding`). */
  readonly members: readonly HistoryEvent[] | undefined;
  /** The first event in the new window's range, in the old layout; null for the new event. */
  readonly first: Cursor | null;
  /** That event's time (the new event's, for a new window). */
  readonly firstTime: number;
}

/** One segment of the new layout. */
interface Placed {
  id: number;
  count: number;
  skip: number;
  /** Its events, where they change (or were read to change). */
  events: readonly HistoryEvent[] | undefined;
  changed: boolean;
  /** Whether it is in the store under its id (the new tail segment is not). */
  readonly stored: boolean;
  /** The old segment it is, by its place in the head's list; -1 for the new tail and a merged run (their `events` are set). */
  readonly old: number;
}

/**
 * Where each old segment's events are in the new layout, by the old segment's place: the new place
 * (-1 for one that left the history) and the shift of its events' indices.
 */
interface Moves {
  readonly place: number[];
  readonly shift: number[];
}

interface Plan {
  readonly kind: 'plan';
  readonly remembered: HistoryEvent;
  readonly oldest: number;
  readonly views: readonly ViewPlan[];
  readonly placed: readonly Placed[];
  readonly moves: Moves;
  readonly deletes: readonly number[];
  readonly nextSegment: number;
}

type Planned = Plan | { readonly kind: 'missing'; readonly keys: readonly string[] } | undefined;

/** A segment not in memory: the plan stops, and names the segments to read (caught in `planAppend`). */
class Missing extends Error {
  constructor(readonly keys: readonly string[]) {
    super('segments to read');
  }
}

/** No members leave (one array for every such plan). */
const NO_EVENTS: readonly HistoryEvent[] = [];

/** Whether a member at `time` is before a window's range (it leaves the window, or was never in it). */
function leavesWindow(bounds: { readonly start: number; readonly startInclusive: boolean }, time: number): boolean {
  return bounds.startInclusive ? time < bounds.start : time <= bounds.start;
}

/** Not an event this path stores as `saveEntity` would (caught in `planAppend`). */
class NotAppendable extends Error {}

/** Kept state that does not describe the stored history: never expected (caught and counted in `planAppend`). */
class Mismatch extends NotAppendable {}

/**
 * The stored segments of a head, read from the store's memory as the plan needs them (one object
 * per plan rather than a closure per helper: a plan is made for every event). Throws `Missing` for
 * a segment not in memory and `Mismatch` where the kept state and the stored history disagree.
 */
class StoredHistory {
  /** By place in the head's list. */
  private readonly read: (readonly HistoryEvent[] | undefined)[] = [];

  constructor(
    private readonly store: KeyValueStore<StoredEntity>,
    private readonly entity: string,
    private readonly head: EntityHead,
    private readonly counts: readonly number[],
  ) {}

  eventsOf(segment: number): readonly HistoryEvent[] {
    const known = this.read[segment];
    if (known) return known;
    const { head, entity } = this;
    // A place beyond the head's segments: a cursor the kept state got wrong (not a segment to read).
    if (!(segment >= 0 && segment < head.segments.length)) throw new Mismatch();
    const id = head.segments[segment] as number;
    const found = this.store.peek(segmentKey(entity, id));
    if (found === NOT_LOADED) {
      // This one and the next few: a window's start or an expiry may go on into the next, and a
      // merge reads the short segments at the end together.
      throw new Missing(head.segments.slice(segment, segment + READ_TOGETHER).map((next) => segmentKey(entity, next)));
    }
    if (found?.kind !== 'segment' || found.events.length !== this.counts[segment]) throw new Mismatch();
    this.read[segment] = found.events;
    return found.events;
  }

  at({ segment, index }: Cursor): HistoryEvent {
    const events = this.eventsOf(segment);
    // An index beyond its segment: a cursor the kept state got wrong.
    if (!(index >= 0 && index < events.length)) throw new Mismatch();
    return events[index] as HistoryEvent;
  }

  /** The next place; null after the history's last event. */
  after({ segment, index }: Cursor): Cursor | null {
    return index + 1 < (this.counts[segment] as number)
      ? { segment, index: index + 1 }
      : segment + 1 < this.head.segments.length
        ? { segment: segment + 1, index: 0 }
        : null;
  }
}

function planAppend(
  store: KeyValueStore<StoredEntity>,
  entity: string,
  features: SourceFeatures,
  event: SourceEvent,
  head: EntityHead,
  state: KeptState,
): Planned {
  const { counts } = state;
  const segments = head.segments.length;
  if (counts.length !== segments || segments === 0) {
    appendCounts.mismatched++;
    return undefined;
  }
  const history = new StoredHistory(store, entity, head, counts);
  try {
    const t = event.eventTime;
    // An event at the newest time so far: after the others of that time, unless it is one of them
    // replayed (left to the general path, which finds it a duplicate).
    if (t === head.newest) {
      const lastSegment = segments - 1;
      for (let segment = lastSegment; segment >= 0; segment--) {
        const events = history.eventsOf(segment);
        let index = events.length - 1;
        for (; index >= (segment === 0 ? head.trim : 0); index--) {
          const existing = events[index] as HistoryEvent;
          if (existing.t !== t) break;
          if (existing.seq === event.sequence) throw new NotAppendable();
        }
        if (index >= (segment === 0 ? head.trim : 0)) break;
      }
    }
    const remembered = features.remember(event, head.newest);

    // Expiry: the events at or before the horizon leave the history's front.
    const horizon = t - features.retentionMs;
    let expired = 0;
    let oldest = state.oldest;
    if (oldest <= horizon) {
      let cursor: Cursor | null = { segment: 0, index: head.trim };
      while (cursor && history.at(cursor).t <= horizon) {
        expired++;
        cursor = history.after(cursor);
      }
      oldest = cursor ? history.at(cursor).t : t;
    }

    // Each view's window slides: the members before its new start leave.
    const views: ViewPlan[] = [];
    for (let place = 0; place < features.views.length; place++) {
      const keptWindow = state.windows[place];
      if (!keptWindow) throw new Mismatch();
      views.push(planView(features.views[place] as FeatureView, keptWindow, history, head, remembered));
    }

    // The layout `saveEntity` gives the history with the event appended: expired segments go, the
    // first one is trimmed, the tail takes the event (or a new segment does), and the short
    // segments at the end are merged once they hold a full segment's events.
    const deletes: number[] = [];
    const placed: Placed[] = [];
    const moves: Moves = { place: new Array<number>(segments).fill(-1), shift: new Array<number>(segments).fill(0) };
    let drop = expired;
    for (let segment = 0; segment < segments; segment++) {
      const id = head.segments[segment] as number;
      const skip = segment === 0 ? head.trim : 0;
      const visible = (counts[segment] as number) - skip;
      if (drop >= visible) {
        drop -= visible;
        deletes.push(id);
        continue;
      }
      moves.place[segment] = placed.length;
      placed.push({
        id,
        count: counts[segment] as number,
        skip: skip + drop,
        events: undefined,
        changed: false,
        stored: true,
        old: segment,
      });
      drop = 0;
    }
    let { nextSegment } = head;
    const tail = placed.at(-1);
    if (tail && tail.count - tail.skip < TAIL_EVENTS) {
      const own = history.eventsOf(tail.old);
      const events: HistoryEvent[] = [];
      for (let index = tail.skip; index < own.length; index++) events.push(own[index] as HistoryEvent);
      events.push(remembered);
      moves.shift[tail.old] = -tail.skip;
      tail.events = events;
      tail.count = events.length;
      tail.skip = 0;
      tail.changed = true;
    } else {
      placed.push({ id: nextSegment++, count: 1, skip: 0, events: [remembered], changed: true, stored: false, old: -1 });
    }
    // A segment `saveEntity` would split (it took many late events): the general path splits it.
    if (placed.some((segment) => segment.count - segment.skip > 2 * SEGMENT_EVENTS)) throw new NotAppendable();
    let run = placed.length;
    let runEvents = 0;
    for (; run > 0; run--) {
      const segment = placed[run - 1] as Placed;
      if (segment.count - segment.skip >= SEGMENT_EVENTS) break;
      runEvents += segment.count - segment.skip;
    }
    if (placed.length - run >= 2 && runEvents >= SEGMENT_EVENTS) {
      const merged = placed.splice(run);
      const events: HistoryEvent[] = [];
      for (const segment of merged) {
        const own = segment.events ?? history.eventsOf(segment.old);
        // The old segment it is (none for the new tail) now starts at the run's events so far.
        if (segment.old >= 0) {
          moves.place[segment.old] = run;
          moves.shift[segment.old] = (moves.shift[segment.old] as number) + events.length - segment.skip;
        }
        for (let index = segment.skip; index < own.length; index++) events.push(own[index] as HistoryEvent);
        if (segment !== merged[0] && segment.stored) deletes.push(segment.id);
      }
      const runFirst = merged[0] as Placed;
      placed.push({ id: runFirst.id, count: events.length, skip: 0, events, changed: true, stored: runFirst.stored, old: -1 });
    }
    return { kind: 'plan', remembered, oldest, views, placed, moves, deletes, nextSegment };
  } catch (error) {
    if (error instanceof Missing) return { kind: 'missing', keys: error.keys };
    if (error instanceof NotAppendable) {
      if (error instanceof Mismatch) appendCounts.mismatched++;
      return undefined;
    }
    throw error;
  }
}

/** How a view's kept window slides to take the event `remembered` (throws as `planAppend`'s steps do). */
function planView(view: FeatureView, keptWindow: KeptWindow, history: StoredHistory, head: EntityHead, remembered: HistoryEvent): ViewPlan {
  if (view.window.kind === 'session') throw new NotAppendable();
  const bounds = lookBack(view.window, remembered.t);
  if (leavesWindow(bounds, head.newest as number)) {
    if (WindowAggregates.readsMembersWhenFirst(view, remembered)) throw new NotAppendable();
    return {
      start: bounds.start,
      end: bounds.end,
      reset: true,
      leaving: NO_EVENTS,
      members: undefined,
      first: null,
      firstTime: remembered.t,
    };
  }
  // The first member stays, and with it every later one: nothing leaves, nothing is read.
  if (!leavesWindow(bounds, keptWindow.firstTime)) {
    if (keptWindow.window.readsMembersAfter(NO_EVENTS, remembered)) throw new NotAppendable();
    const { first, firstTime } = keptWindow;
    return { start: bounds.start, end: bounds.end, reset: false, leaving: NO_EVENTS, members: undefined, first, firstTime };
  }
  const leaving: HistoryEvent[] = [];
  let first: Cursor | null = keptWindow.first;
  let firstTime: number;
  for (;;) {
    // The newest event so far stays: the walk ends before the history does.
    if (!first) throw new Mismatch();
    const candidate = history.at(first);
    // The kept time is the kept cursor's event's (never expected otherwise).
    if (first === keptWindow.first && candidate.t !== keptWindow.firstTime) throw new Mismatch();
    if (!leavesWindow(bounds, candidate.t)) {
      firstTime = candidate.t;
      break;
    }
    if (!isLate(candidate, view.graceMs)) leaving.push(candidate);
    first = history.after(first);
  }
  // A stddev that would read the members: the general path has them.
  if (keptWindow.window.readsMembersAfter(leaving, remembered)) throw new NotAppendable();
  let members: HistoryEvent[] | undefined;
  if (leaving.length > 0 && !keptWindow.window.slides) {
    members = [];
    for (let cursor: Cursor | null = keptWindow.first; cursor; cursor = history.after(cursor)) {
      const member = history.at(cursor);
      if (!isLate(member, view.graceMs)) members.push(member);
    }
  }
  return { start: bounds.start, end: bounds.end, reset: false, leaving, members, first, firstTime };
}

// ---- carrying it out ------------------------------------------------------------------------------

/**
 * A stddev over a value that `squaresExactly` refuses needs the members: the general path (caught
 * in `carryOut`; `planAppend` leaves such events to it before anything is taken, so not expected).
 */
class MembersNeeded extends Error {}

/** `WindowAggregates.values`' reader of members, here: none (see `MembersNeeded`). */
const membersNeeded = (): never => {
  throw new MembersNeeded();
};

/** Where a window's first event (`null`: the new event, `newest`) is in the new layout. */
function movedCursor(cursor: Cursor | null, moves: Moves, newest: Cursor, entity: string): Cursor {
  if (!cursor) return newest;
  const segment = moves.place[cursor.segment] ?? -1;
  if (segment < 0) throw new Error(`a window's first event (segment ${cursor.segment}) left the history of entity ${entity}`);
  return { segment, index: cursor.index + (moves.shift[cursor.segment] as number) };
}

function carryOut(
  store: KeyValueStore<StoredEntity>,
  entity: string,
  features: SourceFeatures,
  event: SourceEvent,
  head: EntityHead,
  state: KeptState,
  plan: Plan,
): Appended | undefined {
  const { remembered, placed, moves } = plan;
  const last = placed.length - 1;
  const newest: Cursor = { segment: last, index: (placed[last] as Placed).count - 1 };

  const rows: FeatureRow[] = [];
  const windows: KeptWindow[] = [];
  const latest = { ...head.latest };
  try {
    for (let place = 0; place < features.views.length; place++) {
      const view = features.views[place] as FeatureView;
      const viewPlan = plan.views[place] as ViewPlan;
      let window = (state.windows[place] as KeptWindow).window;
      if (viewPlan.reset) {
        window = new WindowAggregates(view);
      } else {
        if (viewPlan.members) window.startSliding(viewPlan.members);
        for (const leaving of viewPlan.leaving) window.remove(leaving);
      }
      window.add(remembered);
      const values = window.values(membersNeeded);
      const row = features.rowOf(view, remembered, event, viewPlan.start, viewPlan.end, values);
      rows.push(row);
      latest[view.name] = row;
      windows.push({ window, first: movedCursor(viewPlan.first, moves, newest, entity), firstTime: viewPlan.firstTime });
    }
  } catch (error) {
    if (error instanceof MembersNeeded) return undefined;
    throw error;
  }

  // Segments that left the history are never read again: no entry is cached for them.
  for (const id of plan.deletes) store.delete(segmentKey(entity, id), { cache: false });
  for (const segment of placed) if (segment.changed) putSegment(store, entity, segment.id, segment.events as HistoryEvent[]);
  const stored: EntityHead = {
    kind: 'head',
    newest: remembered.t,
    latest,
    segments: placed.map((segment) => segment.id),
    nextSegment: plan.nextSegment,
    trim: placed[0]?.skip ?? 0,
  };
  store.put(entity, stored);
  kept.set(stored, { features, counts: placed.map((segment) => segment.count), oldest: plan.oldest, windows });
  return { rows };
}
