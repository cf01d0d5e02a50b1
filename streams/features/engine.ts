import { fieldsOf, type AggregationSpec, type FeatureRow, type FeatureView } from '../../topology/features.js';

export type { FeatureRow };
import type { SourceDefinition } from '../../topology/sources.js';
import { lookBack } from '../runtime/windows/window.js';
import { compactNumber, sharedString } from './compact-values.js';

/**
 * The computation of feature views, shared by the live stage and every replay: plain code over an
 * entity's recent history, no Kafka. Given the same events in the same per-entity order (the
 * events topic's partition order), it gives the same rows, bit for bit.
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
    const remembered: HistoryEvent = { t, seq: compactNumber(event.sequence), newest: state.newest, v: pick(event.value, this.fields) };
    let position = insertSorted(events, remembered);
    if (state.newest === null || t > state.newest) state.newest = t;
    const horizon = state.newest - this.retentionMs;
    const firstKept = events.findIndex((existing) => existing.t > horizon);
    const dropped = firstKept === -1 ? events.length : firstKept;
    if (dropped !== 0) events.splice(0, dropped);
    // Where the new event now is; -1 when it left at once, expired (its rows then have no events).
    position = position >= dropped ? position - dropped : -1;

    const rows: FeatureRow[] = [];
    const late: string[] = [];
    for (const view of this.views) {
      if (isLate(remembered, view.graceMs)) {
        late.push(view.name);
        continue;
      }
      let memos = this.memos.get(view);
      if (!memos) {
        memos = new WeakMap();
        this.memos.set(view, memos);
      }
      const row = computeRow(view, this.versions.get(view.name) ?? 1, events, position, remembered, event, memos);
      rows.push(row);
      const previous = state.latest[view.name];
      if (!previous || row.eventTime >= previous.eventTime) state.latest[view.name] = row;
    }
    return { rows, late, duplicate: false, inserted: remembered };
  }
}

export function emptyEntityState(): EntityState {
  return { newest: null, events: [], latest: {} };
}

function isLate(event: HistoryEvent, graceMs: number): boolean {
  return event.newest !== null && event.t < event.newest - graceMs;
}

/**
 * One view's row for the event at `upTo` in the history. The window is one run of the sorted
 * history, found by binary search; its members are the events of that run that were on time for
 * the view. Each aggregation goes over them oldest first, so sums are added in the same order as
 * ever and the values stay bit for bit the same.
 */
function computeRow(
  view: FeatureView,
  version: number,
  events: readonly HistoryEvent[],
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
      const first = upTo < 0 ? 0 : firstFrom(events, bounds.start, upTo, bounds.startInclusive);
      const members = { events, first, last: upTo, graceMs: view.graceMs };
      if (upTo - first < MEMO_FROM) {
        values = aggregateAll(view, members);
        break;
      }
      // The window of the event just before this one, if its aggregates are remembered and it
      // spans exactly this window's events but this one: then only this one is added.
      const before = events[upTo - 1] as HistoryEvent;
      const memo = memos.get(before);
      memos.delete(before);
      const extended = memo && memo.first === events[first] && memo.span === upTo - first ? memo : undefined;
      const next: WindowMemo = {
        first: events[first] as HistoryEvent,
        span: upTo - first + 1,
        stats: new Map(),
        distinct: new Map(),
        columns: new Map(),
      };
      values = aggregateAll(view, members, extended, next);
      memos.set(current, next);
      break;
    }
    case 'session': {
      const eligible = events.slice(0, upTo + 1).filter((candidate) => !isLate(candidate, view.graceMs));
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
      values = aggregateAll(view, {
        events: eligible,
        first: Math.max(first, 0),
        last: eligible.length - 1,
        graceMs: Number.POSITIVE_INFINITY,
      });
      break;
    }
  }
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

/** What one pass over a numeric field's finite values gives (the sums oldest first). */
interface FieldStats {
  count: number;
  total: number;
  low: number;
  high: number;
  latest: number | null;
  /** Σ (value − mean)², added oldest first; computed on the first stddev that needs it. */
  squares?: number;
}

/**
 * The fewest events (before the last) a window needs for its aggregates to be remembered: going
 * over a shorter one costs less than keeping them.
 */
const MEMO_FROM = 48;

/**
 * What the window of one event of a view held, kept so that the next event's window can add to it
 * instead of going over it again: the window's first event and how many places of the history it
 * spanned, with the counts, sums, extremes and distinct values of its members.
 *
 * Exact, not approximate: a history only ever gains events (in order, or late ones in between)
 * and loses its oldest. So a later window that starts at the same event and spans the same places
 * but one new last place holds the same members plus that one, and adding it to the remembered
 * sums is the very same chain of additions, oldest first, that a pass over the window does. The
 * events are compared by identity: a history read back from storage has new objects, and its
 * first window is computed in full.
 */
interface WindowMemo {
  readonly first: HistoryEvent;
  readonly span: number;
  readonly stats: Map<string, FieldStats>;
  /** Handed on to the next window (never shared): one set per entity and field, not one per event. */
  readonly distinct: Map<string, Set<string>>;
  /** The members' finite values of each field a stddev reads, oldest first; handed on like `distinct`. */
  readonly columns: Map<string, Column>;
  count?: number;
}

/** Numbers in a buffer that grows by doubling: `values[0..length)`. */
interface Column {
  values: Float64Array;
  length: number;
}

/**
 * Every aggregation of a view, in the order of its features (then derived features follow): one
 * pass per numeric field that any of them reads, shared by its sum, mean, min, max, last and stddev.
 * With `extended` (the window up to the event before the last), only the last event is added to
 * what it holds; `next`, when given, takes what this window holds.
 */
function aggregateAll(view: FeatureView, members: Members, extended?: WindowMemo, next?: WindowMemo): Record<string, number | null> {
  const values: Record<string, number | null> = {};
  // What the window before holds needs only the last event added; anything else, every event.
  const { first, last } = members;
  const stats = next?.stats ?? new Map<string, FieldStats>();
  let count: number | undefined;
  for (const [name, spec] of aggregationsOf(view)) {
    if (spec.kind === 'count') {
      count ??= (extended?.count ?? 0) + countMembers(members, extended?.count === undefined ? first : last);
      values[name] = count;
      continue;
    }
    const field = spec.field ?? '';
    if (spec.kind === 'distinct_count') {
      let seen = next?.distinct.get(field);
      if (!seen) {
        const known = takeFrom(extended?.distinct, field);
        seen = known ?? new Set();
        addDistinct(seen, members, field, known ? last : first);
        next?.distinct.set(field, seen);
      }
      values[name] = seen.size;
      continue;
    }
    let fieldStats = stats.get(field);
    if (!fieldStats) {
      const known = extended?.stats.get(field);
      fieldStats = numericStats(members, field, known ? last : first, known && { ...known, squares: undefined });
      stats.set(field, fieldStats);
    }
    if (spec.kind === 'stddev' && next && fieldStats.squares === undefined && fieldStats.count > 0) {
      // The second pass, around the mean, over the members' values in one buffer instead of the history.
      const column = columnOf(field, members, extended, next);
      const average = fieldStats.total / fieldStats.count;
      let squares = 0;
      for (let index = 0; index < column.length; index++) squares += ((column.values[index] as number) - average) ** 2;
      fieldStats.squares = squares;
    }
    values[name] = fromStats(spec, fieldStats, members, field);
  }
  if (next && count !== undefined) next.count = count;
  return values;
}

function countMembers({ events, last, graceMs }: Members, from: number): number {
  let count = 0;
  for (let index = from; index <= last; index++) if (!isLate(events[index] as HistoryEvent, graceMs)) count++;
  return count;
}

function addDistinct(seen: Set<string>, { events, last, graceMs }: Members, field: string, from: number): void {
  for (let index = from; index <= last; index++) {
    const event = events[index] as HistoryEvent;
    if (isLate(event, graceMs)) continue;
    const value = event.v[field];
    if (value !== null && value !== undefined) seen.add(String(value));
  }
}

/** Takes a set or buffer out of the remembered window: handed on, not copied, since that window is not used again. */
function takeFrom<T>(remembered: Map<string, T> | undefined, field: string): T | undefined {
  const taken = remembered?.get(field);
  remembered?.delete(field);
  return taken;
}

/** The finite values of `field` in the window: those of the window before plus the last event's, or all. */
function columnOf(field: string, members: Members, extended: WindowMemo | undefined, next: WindowMemo): Column {
  let column = next.columns.get(field);
  if (column) return column;
  const known = takeFrom(extended?.columns, field);
  column = known ?? { values: new Float64Array(2 * MEMO_FROM), length: 0 };
  const { events, first, last, graceMs } = members;
  for (let index = known ? last : first; index <= last; index++) {
    const event = events[index] as HistoryEvent;
    if (isLate(event, graceMs)) continue;
    const value = event.v[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    if (column.length === column.values.length) {
      const grown = new Float64Array(2 * column.values.length);
      grown.set(column.values);
      column.values = grown;
    }
    column.values[column.length++] = value;
  }
  next.columns.set(field, column);
  return column;
}

/** Adds the finite values of `field` from `from` on to `start` (nothing by default), oldest first. */
function numericStats({ events, last, graceMs }: Members, field: string, from: number, start?: FieldStats): FieldStats {
  const stats: FieldStats = start ?? { count: 0, total: 0, low: Number.POSITIVE_INFINITY, high: Number.NEGATIVE_INFINITY, latest: null };
  for (let index = from; index <= last; index++) {
    const event = events[index] as HistoryEvent;
    if (isLate(event, graceMs)) continue;
    const value = event.v[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    stats.count++;
    stats.total += value;
    if (value < stats.low) stats.low = value;
    if (value > stats.high) stats.high = value;
    stats.latest = value;
  }
  return stats;
}

/** A numeric aggregation from its field's pass; null where it is undefined (no finite value). */
function fromStats(spec: AggregationSpec, stats: FieldStats, members: Members, field: string): number | null {
  if (spec.kind === 'sum') return stats.total;
  if (stats.count === 0) return null;
  switch (spec.kind) {
    case 'mean':
      return stats.total / stats.count;
    case 'min':
      return stats.low;
    case 'max':
      return stats.high;
    case 'last':
      return stats.latest;
    case 'stddev': {
      if (stats.squares === undefined) {
        const average = stats.total / stats.count;
        let squares = 0;
        const { events, first, last, graceMs } = members;
        for (let index = first; index <= last; index++) {
          const event = events[index] as HistoryEvent;
          if (isLate(event, graceMs)) continue;
          const value = event.v[field];
          if (typeof value === 'number' && Number.isFinite(value)) squares += (value - average) ** 2;
        }
        stats.squares = squares;
      }
      return Math.sqrt(stats.squares / stats.count);
    }
    case 'count':
    case 'distinct_count':
      throw new Error(`${spec.kind} is not a numeric field's aggregation`);
  }
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

const aggregations = new WeakMap<FeatureView, readonly (readonly [string, AggregationSpec])[]>();

/** A view's aggregations as [name, spec], in order (computed once per view). */
function aggregationsOf(view: FeatureView): readonly (readonly [string, AggregationSpec])[] {
  let entries = aggregations.get(view);
  if (!entries) {
    entries = Object.entries(view.features);
    aggregations.set(view, entries);
  }
  return entries;
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
