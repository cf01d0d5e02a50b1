import { fieldsOf, type AggregationSpec, type FeatureRow, type FeatureView } from '../../topology/features.js';

export type { FeatureRow };
import type { SourceDefinition } from '../../topology/sources.js';
import { lookBack } from '../runtime/windows/window.js';

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

  /** Folds one event into its entity's state (mutated in place) and returns the rows it produces. */
  apply(state: EntityState, event: SourceEvent): ApplyResult {
    const t = event.eventTime;
    if (state.events.some((existing) => existing.seq === event.sequence && existing.t === t))
      return { rows: [], late: [], duplicate: true };
    const remembered: HistoryEvent = { t, seq: event.sequence, newest: state.newest, v: pick(event.value, this.fields) };
    insertSorted(state.events, remembered);
    if (state.newest === null || t > state.newest) state.newest = t;
    const horizon = state.newest - this.retentionMs;
    const firstKept = state.events.findIndex((existing) => existing.t > horizon);
    if (firstKept !== 0) state.events.splice(0, firstKept === -1 ? state.events.length : firstKept);

    const rows: FeatureRow[] = [];
    const late: string[] = [];
    for (const view of this.views) {
      if (isLate(remembered, view)) {
        late.push(view.name);
        continue;
      }
      const row = computeRow(view, this.versions.get(view.name) ?? 1, state.events, remembered, event);
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

function isLate(event: HistoryEvent, view: FeatureView): boolean {
  return event.newest !== null && event.t < event.newest - view.graceMs;
}

function computeRow(
  view: FeatureView,
  version: number,
  events: readonly HistoryEvent[],
  current: HistoryEvent,
  event: SourceEvent,
): FeatureRow {
  const t = current.t;
  // Events that count: on time for this view and not after the current one (by time, then arrival).
  const upTo = events.indexOf(current);
  let windowStart: number;
  let windowEnd: number;
  let members: HistoryEvent[];
  switch (view.window.kind) {
    case 'sliding':
    case 'tumbling':
    case 'hopping': {
      const bounds = lookBack(view.window, t);
      windowStart = bounds.start;
      windowEnd = bounds.end;
      // The history is sorted by time: the window is one run of it, found from the current event back.
      let first = upTo;
      while (first > 0) {
        const previous = events[first - 1];
        if (!previous || (bounds.startInclusive ? previous.t < bounds.start : previous.t <= bounds.start)) break;
        first--;
      }
      members = [];
      for (let index = first; index <= upTo; index++) {
        const candidate = events[index];
        if (candidate && !isLate(candidate, view)) members.push(candidate);
      }
      break;
    }
    case 'session': {
      const eligible = events.slice(0, upTo + 1).filter((candidate) => !isLate(candidate, view));
      const { gapMs } = view.window;
      const { maxSpanMs } = view.window;
      let first = eligible.length - 1;
      while (first > 0) {
        const previous = eligible[first - 1];
        const next = eligible[first];
        if (!previous || !next || next.t - previous.t > gapMs || t - previous.t >= maxSpanMs) break;
        first--;
      }
      members = eligible.slice(first);
      windowStart = members[0]?.t ?? t;
      windowEnd = t;
      break;
    }
  }
  // In the order of featureNames (aggregations, then derived features, whose names differ).
  const values: Record<string, number | null> = {};
  for (const [name, spec] of aggregationsOf(view)) values[name] = aggregate(spec, members);
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

/** One aggregation over the window's events, oldest first; null where it is undefined. */
export function aggregate(spec: AggregationSpec, events: readonly HistoryEvent[]): number | null {
  if (spec.kind === 'count') return events.length;
  const field = spec.field ?? '';
  if (spec.kind === 'distinct_count') {
    const seen = new Set<string>();
    for (const event of events) {
      const value = event.v[field];
      if (value !== null && value !== undefined) seen.add(String(value));
    }
    return seen.size;
  }
  // One pass, oldest first (sums in the same order as ever, so values stay bit for bit), no arrays.
  let count = 0;
  let total = 0;
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  let latest: number | null = null;
  for (const event of events) {
    const value = event.v[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    count++;
    total += value;
    if (value < low) low = value;
    if (value > high) high = value;
    latest = value;
  }
  if (spec.kind === 'sum') return total;
  if (count === 0) return null;
  switch (spec.kind) {
    case 'mean':
      return total / count;
    case 'min':
      return low;
    case 'max':
      return high;
    case 'last':
      return latest;
    case 'stddev': {
      const average = total / count;
      let squares = 0;
      for (const event of events) {
        const value = event.v[field];
        if (typeof value === 'number' && Number.isFinite(value)) squares += (value - average) ** 2;
      }
      return Math.sqrt(squares / count);
    }
  }
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
    picked[field] = typeof raw === 'number' ? raw : typeof raw === 'string' ? raw : typeof raw === 'bigint' ? Number(raw) : null;
  }
  return picked;
}

/** Inserts by (time, arrival): after every event with an earlier or equal time. */
function insertSorted(events: HistoryEvent[], event: HistoryEvent): void {
  let index = events.length;
  while (index > 0) {
    const previous = events[index - 1];
    if (!previous || previous.t <= event.t) break;
    index--;
  }
  events.splice(index, 0, event);
}
