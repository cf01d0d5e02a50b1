import { fieldsOf, type FeatureRow, type FeatureView } from '../../topology/features.js';

export type { FeatureRow };
import type { SourceDefinition } from '../../topology/sources.js';
import { lookBack } from '../runtime/windows/window.js';
import { compactNumber, sharedString } from './compact-values.js';
import { WindowAggregates } from './window-aggregates.js';

/**
 * The computation of feature views, shared by the live stage and every replay: plain code over an
 * entity's recent history, no Kafka. Given the same events in the same per-entity order (the
 * events topic's partition order), it gives the same rows, bit for bit: every aggregate is a
 * function of its window's members alone (`WindowAggregates`), however the window was reached.
 */

/** One remembered event of an entity: the fields the views read. */
export interface HistoryEvent {
  readonly t: number;
  /** Arrival order within the entity (the events topic's offset). */
  readonly seq: number;
  /** The entity's newest event time when this one arrived (null for the first): decides lateness. */
  readonly newest: number | null;
  readonly v: Readonly<Record<string, number | string | null>>;
}

/** The state of one entity of one source: its recent events (by time, then arrival) and latest rows. */
export interface EntityState {
  newest: number | null;
  events: HistoryEvent[];
  latest: Record<string, FeatureRow>;
}

export interface SourceEvent {
  readonly entity: string;
  readonly eventId: string;
  readonly eventTime: number;
  readonly sequence: number;
  readonly value: Readonly<Record<string, unknown>>;
}

export interface ApplyResult {
  readonly rows: FeatureRow[];
  /** Views for which the event came too late. */
  readonly late: string[];
  /** Whether the event was already in the history (a replayed duplicate): no rows then. */
  readonly duplicate: boolean;
  /** The event as the history remembers it (none for a duplicate); it may have left at once, expired. */
  readonly inserted?: HistoryEvent;
}

/** The views of one source, computed together over one history per entity. */
export class SourceFeatures {
  readonly fields: readonly string[];
  readonly retentionMs: number;
  /** Per view: the aggregates of the last window each event closed (see `WindowMemo`). */
  private readonly memos = new Map<FeatureView, WeakMap<HistoryEvent, WindowMemo>>();

  constructor(
    readonly source: SourceDefinition,
    readonly views: readonly FeatureView[],
    private readonly versions: ReadonlyMap<string, number>,
  ) {
    for (const view of views)
      if (view.source.name !== source.name) throw new Error(`view ${view.name} reads ${view.source.name}, not ${source.name}`);
    this.fields = [...new Set(views.flatMap(fieldsOf))];
    this.retentionMs = Math.max(0, ...views.map((view) => view.retentionMs));
  }

  /**
   * Folds one event into its entity's state (mutated in place) and returns the rows it produces.
   * The history must be sorted by (time, arrival), as this keeps it and every stored form reads it
   * back: duplicates and window starts are found by binary search.
   */
  apply(state: EntityState, event: SourceEvent): ApplyResult {
    const t = event.eventTime;
    const { events } = state;
    // The history is sorted by time: a replayed duplicate sits among the events of its time.
    for (let index = firstFrom(events, t, events.length, true); index < events.length; index++) {
      const existing = events[index] as HistoryEvent;
      if (existing.t !== t) break;
      if (existing.seq === event.sequence) return { rows: [], late: [], duplicate: true };
    }
    const remembered = this.remember(event, state.newest);
    let position = insertSorted(events, remembered);
    if (state.newest === null || t > state.newest) state.newest = t;
    const horizon = state.newest - this.retentionMs;
    const firstKept = events.findIndex((existing) => existing.t > horizon);
    // The events before `dropped` leave the history, expired. They stay in it until the rows are
    // computed, so that a window that held them lets them go. The new event's place is -1 when it
    // left at once itself (its rows then have no events).
    const dropped = firstKept === -1 ? events.length : firstKept;
    if (position < dropped) position = -1;

    const rows: FeatureRow[] = [];
    const late: string[] = [];
    for (const view of this.views) {
      if (isLate(remembered, view.graceMs)) {
        late.push(view.name);
        continue;
      }
      const row = computeRow(view, this.versionOf(view), { events, lowest: dropped }, position, remembered, event, this.memosOf(view));
      rows.push(row);
      const previous = state.latest[view.name];
      if (!previous || row.eventTime >= previous.eventTime) state.latest[view.name] = row;
    }
    if (dropped !== 0) events.splice(0, dropped);
    return { rows, late, duplicate: false, inserted: remembered };
  }

  /** Whether every view's window is found by looking back from an event's time (no session windows). */
  get looksBack(): boolean {
    return this.views.every((view) => view.window.kind !== 'session');
  }

  /** The event as a history remembers it, arriving when the entity's newest event time is `newest`. */
  remember(event: SourceEvent, newest: number | null): HistoryEvent {
    return { t: event.eventTime, seq: compactNumber(event.sequence), newest, v: pick(event.value, this.fields) };
  }

  /**
   * Per view, the window of the history's last event (its newest: a non-empty history as `apply`
   * leaves it) and the index of the first event in the window's range, for windows kept from here
   * on outside the history (`entity-append.ts`). The window `apply` just remembered for that event
   * is handed over when it spans exactly that range (the engine forgets it); any other is filled.
   * Only for views that look back (`looksBack`).
   */
  newestWindows(events: readonly HistoryEvent[]): { readonly window: WindowAggregates; readonly first: number }[] {
    const last = events.length - 1;
    const newest = events[last] as HistoryEvent;
    return this.views.map((view) => {
      if (view.window.kind === 'session') throw new Error(`view ${view.name} has session windows: no window looks back`);
      const bounds = lookBack(view.window, newest.t);
      const first = firstFrom(events, bounds.start, last, bounds.startInclusive);
      const memos = this.memosOf(view);
      const memo = memos.get(newest);
      memos.delete(newest);
      if (memo && memo.span === last - first + 1 && events[first] === memo.first) return { window: memo.window, first };
      return { window: filled(view, { events, first, last, graceMs: view.graceMs }), first };
    });
  }

  /** The row of `view` for the event (remembered as `current`), from its window's values. */
  rowOf(
    view: FeatureView,
    current: HistoryEvent,
    event: SourceEvent,
    windowStart: number,
    windowEnd: number,
    values: Record<string, number | null>,
  ): FeatureRow {
    return finishRow(view, this.versionOf(view), current, event, windowStart, windowEnd, values);
  }

  private versionOf(view: FeatureView): number {
    return this.versions.get(view.name) ?? 1;
  }

  private memosOf(view: FeatureView): WeakMap<HistoryEvent, WindowMemo> {
    let memos = this.memos.get(view);
    if (!memos) {
      memos = new WeakMap();
      this.memos.set(view, memos);
    }
    return memos;
  }
}

export function emptyEntityState(): EntityState {
  return { newest: null, events: [], latest: {} };
}

/** Whether the event came too late for a view with this grace (decided on its arrival, for good). */
export function isLate(event: HistoryEvent, graceMs: number): boolean {
  return event.newest !== null && event.t < event.newest - graceMs;
}

/** The history as `apply` passes it on: the events before `lowest` are leaving it, expired. */
interface History {
  readonly events: readonly HistoryEvent[];
  readonly lowest: number;
}

/**
 * One view's row for the event at `upTo` in the history. The window is one run of the sorted
 * history, found by binary search; its members are the events of that run that were on time for
 * the view. A window of the event just before this one that is remembered (`WindowMemo`) slides
 * to this one: the members that left its start go, this event joins at its end.
 */
function computeRow(
  view: FeatureView,
  version: number,
  { events, lowest }: History,
  upTo: number,
  current: HistoryEvent,
  event: SourceEvent,
  memos: WeakMap<HistoryEvent, WindowMemo>,
): FeatureRow {
  const t = current.t;
  let windowStart: number;
  let windowEnd: number;
  let values: Record<string, number | null>;
  switch (view.window.kind) {
    case 'sliding':
    case 'tumbling':
    case 'hopping': {
      const bounds = lookBack(view.window, t);
      windowStart = bounds.start;
      windowEnd = bounds.end;
      // Events before the current one count from the first inside the window's start; the current one always does.
      const first = upTo < 0 ? 0 : Math.max(lowest, firstFrom(events, bounds.start, upTo, bounds.startInclusive));
      const members: Members = { events, first, last: upTo, graceMs: view.graceMs };
      if (upTo - first < MEMO_FROM) {
        values = filled(view, members).values((field) => valuesOf(members, field));
        break;
      }
      const before = events[upTo - 1] as HistoryEvent;
      const memo = memos.get(before);
      memos.delete(before);
      const window = slid(memo, members) ?? filled(view, members);
      memos.set(current, { first: events[first] as HistoryEvent, span: upTo - first + 1, window });
      values = window.values((field) => valuesOf(members, field));
      break;
    }
    case 'session': {
      const eligible = events.slice(lowest, upTo + 1).filter((candidate) => !isLate(candidate, view.graceMs));
      const { gapMs } = view.window;
      const { maxSpanMs } = view.window;
      let first = eligible.length - 1;
      while (first > 0) {
        const previous = eligible[first - 1];
        const next = eligible[first];
        if (!previous || !next || next.t - previous.t > gapMs || t - previous.t >= maxSpanMs) break;
        first--;
      }
      windowStart = eligible[Math.max(first, 0)]?.t ?? t;
      windowEnd = t;
      // The eligible events are on time already: nothing more to leave out.
      const members: Members = {
        events: eligible,
        first: Math.max(first, 0),
        last: eligible.length - 1,
        graceMs: Number.POSITIVE_INFINITY,
      };
      values = filled(view, members).values((field) => valuesOf(members, field));
      break;
    }
  }
  return finishRow(view, version, current, event, windowStart, windowEnd, values);
}

/** A row from its window's values, with the view's derived features. */
function finishRow(
  view: FeatureView,
  version: number,
  current: HistoryEvent,
  event: SourceEvent,
  windowStart: number,
  windowEnd: number,
  values: Record<string, number | null>,
): FeatureRow {
  const t = current.t;
  if (view.derive) {
    const derived = view.derive(values);
    for (const name of view.derived) values[name] = finiteOrNull(derived[name]);
  }
  return {
    view: view.name,
    version,
    entity: event.entity,
    eventId: event.eventId,
    eventTime: t,
    sequence: current.seq,
    windowStart,
    windowEnd,
    values,
  };
}

/** A window's events: those of `events[first..last]` that were on time for a view with this grace. */
interface Members {
  readonly events: readonly HistoryEvent[];
  readonly first: number;
  readonly last: number;
  readonly graceMs: number;
}

/**
 * The fewest events (before the last) a window needs to be remembered: going over a shorter one
 * costs less than keeping it.
 */
const MEMO_FROM = 48;

/**
 * The window of one event of a view, kept so that the next event's window can slide from it
 * instead of going over its members again: where it started (its first event, by identity) and how
 * many places of the history it spanned, up to and including the event.
 *
 * A history only gains events (in order, or late ones in between) and loses its oldest, and an
 * aborted transaction takes it back to an earlier copy holding the same event objects. So when the
 * event before the current one is found `span` places after the remembered first event, those
 * places hold the very events the window held. The aggregates are handed on, not copied: the
 * window of the event before is not used again (a history read back from storage has new objects,
 * and its first window is filled afresh).
 */
interface WindowMemo {
  readonly first: HistoryEvent;
  readonly span: number;
  readonly window: WindowAggregates;
}

/** A new window holding the members. */
function filled(view: FeatureView, members: Members): WindowAggregates {
  const window = new WindowAggregates(view);
  const { events, first, last, graceMs } = members;
  for (let index = first; index <= last; index++) {
    const event = events[index] as HistoryEvent;
    if (!isLate(event, graceMs)) window.add(event);
  }
  return window;
}

/**
 * The remembered window of the event before the last member, slid to the members: those before
 * their first leave, the last joins. Undefined when there is none, it does not span what the
 * history now holds, or sliding would cost more than filling.
 */
function slid(memo: WindowMemo | undefined, members: Members): WindowAggregates | undefined {
  if (!memo) return undefined;
  const { events, first, last, graceMs } = members;
  const from = last - memo.span;
  if (from < 0 || events[from] !== memo.first || first < from || first - from > last - first) return undefined;
  if (first > from && !memo.window.slides) {
    const held: HistoryEvent[] = [];
    for (let index = from; index < last; index++) {
      const member = events[index] as HistoryEvent;
      if (!isLate(member, graceMs)) held.push(member);
    }
    memo.window.startSliding(held);
  }
  for (let index = from; index < first; index++) {
    const leaving = events[index] as HistoryEvent;
    if (!isLate(leaving, graceMs)) memo.window.remove(leaving);
  }
  // The last member is the event the row is for: on time for the view, or there would be no row.
  memo.window.add(events[last] as HistoryEvent);
  return memo.window;
}

/** The finite values of `field` among the members, oldest first. */
function valuesOf({ events, first, last, graceMs }: Members, field: string): number[] {
  const values: number[] = [];
  for (let index = first; index <= last; index++) {
    const event = events[index] as HistoryEvent;
    if (isLate(event, graceMs)) continue;
    const value = event.v[field];
    if (typeof value === 'number' && Number.isFinite(value)) values.push(value);
  }
  return values;
}

/**
 * The first index below `end` whose time is at or after `t` (`inclusive`) or after it (`end` if
 * none); the history is sorted by time.
 */
function firstFrom(events: readonly HistoryEvent[], t: number, end: number, inclusive: boolean): number {
  let low = 0;
  let high = end;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const time = (events[middle] as HistoryEvent).t;
    if (inclusive ? time < t : time <= t) low = middle + 1;
    else high = middle;
  }
  return low;
}

function finiteOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function pick(value: Readonly<Record<string, unknown>>, fields: readonly string[]): Record<string, number | string | null> {
  const picked: Record<string, number | string | null> = {};
  for (const field of fields) {
    const raw = value[field];
    picked[field] =
      typeof raw === 'number' ? raw : typeof raw === 'string' ? sharedString(raw) : typeof raw === 'bigint' ? Number(raw) : null;
  }
  return picked;
}

/** Inserts by (time, arrival): after every event with an earlier or equal time. Returns where. */
function insertSorted(events: HistoryEvent[], event: HistoryEvent): number {
  let index = events.length;
  while (index > 0) {
    const previous = events[index - 1];
    if (!previous || previous.t <= event.t) break;
    index--;
  }
  events.splice(index, 0, event);
  return index;
}
