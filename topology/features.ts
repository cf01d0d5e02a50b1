import { createHash } from 'node:crypto';
import { parseDuration } from '../common/durations.js';
import {
  hopping,
  session,
  sliding,
  tumbling,
  type HoppingWindows,
  type SessionWindows,
  type SlidingWindows,
  type TumblingWindows,
} from '../streams/runtime/windows/window.js';
import type { SourceDefinition } from './sources.js';

/**
 * Feature views, defined once in TypeScript and computed by the same code live (the features
 * stage) and in replay (backfills, training sets, the consistency check).
 *
 * Semantics, for an event of entity e at event time t (the row the view emits for that event):
 * - `sliding(size)`: the events of e with event time in (t − size, t];
 * - `tumbling(size)`: the events in [s, t] with s = the start of the size-aligned window holding t;
 * - `hopping(size, advance)`: the events in [s, t] with s the earliest advance-aligned start whose
 *   window [s, s + size) still holds t (the longest look-back that is aligned to the hop);
 * - `session(gap)`: the events of the session holding t: going back from t, events no more than
 *   `gap` apart (bounded by `maxSpan`).
 * Only events with time ≤ t that arrived before (or are) this one count: a value never sees the
 * future. An event is late for a view when its time is more than the view's grace before the newest
 * event time already seen for its entity; late events count nowhere in that view and emit no row
 * for it (they are counted). Equal event times are ordered by arrival.
 */
export type AggregationKind = 'count' | 'sum' | 'mean' | 'min' | 'max' | 'last' | 'distinct_count' | 'stddev';

export interface AggregationSpec {
  readonly kind: AggregationKind;
  /** The event field aggregated (none for count). */
  readonly field?: string;
}

export const count = (): AggregationSpec => ({ kind: 'count' });
/** The exact sum of the window's finite values, rounded once (0 for none). */
export const sum = (field: string): AggregationSpec => ({ kind: 'sum', field });
/** The exact sum, rounded, over the count of finite values (null for none). */
export const mean = (field: string): AggregationSpec => ({ kind: 'mean', field });
export const min = (field: string): AggregationSpec => ({ kind: 'min', field });
export const max = (field: string): AggregationSpec => ({ kind: 'max', field });
export const last = (field: string): AggregationSpec => ({ kind: 'last', field });
export const distinctCount = (field: string): AggregationSpec => ({ kind: 'distinct_count', field });
/** Population standard deviation (0 for one event, null for none). */
export const stddev = (field: string): AggregationSpec => ({ kind: 'stddev', field });

/** A view's window: the runtime's window definitions (sessions always bounded by a maximum span). */
export type FeatureWindow = TumblingWindows | HoppingWindows | SlidingWindows | (SessionWindows & { readonly maxSpanMs: number });

type Duration = string | number;
export const slidingWindow = (size: Duration): FeatureWindow => sliding(positive(size));
export const tumblingWindow = (size: Duration): FeatureWindow => tumbling(positive(size));
export function hoppingWindow(size: Duration, advance: Duration): FeatureWindow {
  const sizeMs = positive(size);
  const advanceMs = positive(advance);
  if (advanceMs > sizeMs) throw new FeatureDefinitionError(`hopping advance ${advanceMs} ms exceeds the size ${sizeMs} ms`);
  return hopping(sizeMs, advanceMs);
}
export const sessionWindow = (gap: Duration, maxSpan: Duration = '1d'): FeatureWindow => ({
  ...session(positive(gap)),
  maxSpanMs: positive(maxSpan),
});

/**
 * The clock a view's TTL is judged against when an online lookup names no time (`at`):
 * - `'wall'` (the default): the wall clock. A value is missing once its row is older than the TTL
 *   now — the entity has gone quiet. Right for live traffic; replayed or historical data (event
 *   times in the past) is all OUTSIDE_MAX_AGE.
 * - `'event'`: the stream's event time, as the entity's newest event time (kept in the entity's
 *   state, so it survives restarts and is the same on every instance and in every replay).
 *   Historical data is served as it was. An entity's values do not age without new events of that
 *   entity; ask with `at` (as inference does, with the scored event's time) to judge a given moment.
 * A lookup with `at` judges the TTL against `at` under either clock.
 */
export type TtlClock = 'wall' | 'event';

/** Feature values of one row: aggregations first, then derived ones; null where undefined. */
export type FeatureValues = Readonly<Record<string, number | null>>;

export interface FeatureViewInput {
  readonly name: string;
  readonly source: SourceDefinition;
  /** The entity field; defaults to the source's entity field (the events topic's key). */
  readonly entity?: string;
  readonly window: FeatureWindow;
  readonly features: Readonly<Record<string, AggregationSpec>>;
  /** Computed features from the aggregated ones (e.g. a score); must be pure and deterministic. */
  readonly derive?: (values: FeatureValues) => Readonly<Record<string, number | null>>;
  readonly grace?: Duration;
  /** Online values older than this (in event time, relative to the lookup time) are missing. */
  readonly ttl?: Duration;
  /** What the lookup time is when a lookup names none (default `'wall'`; see TtlClock). */
  readonly ttlClock?: TtlClock;
  readonly online?: boolean;
  readonly owner: string;
  readonly description: string;
}

export interface FeatureView {
  readonly name: string;
  readonly source: SourceDefinition;
  readonly entity: string;
  readonly window: FeatureWindow;
  readonly features: Readonly<Record<string, AggregationSpec>>;
  readonly derive?: (values: FeatureValues) => Readonly<Record<string, number | null>>;
  /** Names of the derived features, in order (found by calling derive once on nulls). */
  readonly derived: readonly string[];
  readonly graceMs: number;
  readonly ttlMs: number | undefined;
  readonly ttlClock: TtlClock;
  readonly online: boolean;
  readonly owner: string;
  readonly description: string;
  /** SHA-256 of the normalized definition (derive's source included): same hash, same values. */
  readonly hash: string;
  /** Event time before t that a row at t may need: window span plus grace. */
  readonly retentionMs: number;
}

export class FeatureDefinitionError extends Error {
  override readonly name = 'FeatureDefinitionError';
}

const NAME = /^[a-z][a-z0-9_]*$/;
const AGGREGATION_KINDS: ReadonlySet<string> = new Set<AggregationKind>([
  'count',
  'sum',
  'mean',
  'min',
  'max',
  'last',
  'distinct_count',
  'stddev',
]);

export function featureView(input: FeatureViewInput): FeatureView {
  if (!NAME.test(input.name))
    throw new FeatureDefinitionError(`feature view name "${input.name}" must be lower-case letters, digits and _`);
  const names = Object.keys(input.features);
  if (names.length === 0) throw new FeatureDefinitionError(`feature view ${input.name} has no features`);
  for (const [feature, spec] of Object.entries(input.features)) {
    if (!NAME.test(feature))
      throw new FeatureDefinitionError(`feature "${feature}" of ${input.name} must be lower-case letters, digits and _`);
    // Checked for topologies written in JavaScript: an unknown kind would compute no value.
    if (!AGGREGATION_KINDS.has(spec.kind))
      throw new FeatureDefinitionError(`feature ${input.name}.${feature} has an unknown aggregation "${spec.kind}"`);
    if (spec.kind !== 'count' && !spec.field)
      throw new FeatureDefinitionError(`feature ${input.name}.${feature} (${spec.kind}) needs a field`);
  }
  const derived = input.derive ? Object.keys(input.derive(Object.fromEntries(names.map((name) => [name, null])))) : [];
  for (const feature of derived) {
    if (!NAME.test(feature))
      throw new FeatureDefinitionError(`derived feature "${feature}" of ${input.name} must be lower-case letters, digits and _`);
    if (names.includes(feature)) throw new FeatureDefinitionError(`derived feature ${input.name}.${feature} repeats an aggregation's name`);
  }
  const graceMs = input.grace === undefined ? 0 : parseDuration(input.grace);
  const ttlMs = input.ttl === undefined ? undefined : positive(input.ttl);
  const ttlClock: string = input.ttlClock ?? 'wall';
  // Checked for topologies written in JavaScript (TypeScript's check does not reach them).
  if (ttlClock !== 'wall' && ttlClock !== 'event')
    throw new FeatureDefinitionError(`ttlClock of ${input.name} is 'wall' or 'event', got "${ttlClock}"`);
  const entity = input.entity ?? input.source.entityField;
  // What the values are computed from; serving settings (TTL and its clock, online) are not in it:
  // changing them changes what is served, not a single value, so the version stays.
  const normalized = {
    name: input.name,
    source: input.source.name,
    entity,
    window: input.window,
    features: Object.entries(input.features).map(([name, spec]) => [name, spec.kind, spec.field ?? null]),
    derive: input.derive ? input.derive.toString() : null,
    graceMs,
  };
  return Object.freeze({
    name: input.name,
    source: input.source,
    entity,
    window: input.window,
    features: Object.freeze({ ...input.features }),
    ...(input.derive ? { derive: input.derive } : {}),
    derived,
    graceMs,
    ttlMs,
    ttlClock,
    online: input.online ?? true,
    owner: input.owner,
    description: input.description,
    hash: createHash('sha256').update(JSON.stringify(normalized)).digest('hex'),
    retentionMs: windowSpan(input.window) + graceMs,
  });
}

/** Every feature of a view, aggregations then derived ones. */
export function featureNames(view: FeatureView): string[] {
  return [...Object.keys(view.features), ...view.derived];
}

/** The event fields a view reads. */
export function fieldsOf(view: FeatureView): string[] {
  return [...new Set(Object.values(view.features).flatMap((spec) => (spec.field ? [spec.field] : [])))];
}

function windowSpan(window: FeatureWindow): number {
  return window.kind === 'session' ? window.maxSpanMs : window.sizeMs;
}

function positive(duration: Duration): number {
  const ms = parseDuration(duration);
  if (!(ms > 0)) throw new FeatureDefinitionError(`a duration must be positive, got ${String(duration)}`);
  return ms;
}

/** A view's row for one event: also what the online store serves as the entity's latest. */
export interface FeatureRow {
  readonly view: string;
  readonly version: number;
  readonly entity: string;
  readonly eventId: string;
  readonly eventTime: number;
  readonly sequence: number;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly values: FeatureValues;
}

/**
 * What the features stage leaves on an event for the stages after it in the same task (the
 * record's scratch, under EVENT_FEATURES): the row of every view it computed for this very event,
 * and the views for which the event came too late. Inference scores with exactly these.
 */
export interface EventFeatures {
  /** One per view the event was on time for (a few: found by a scan, not a map per event). */
  readonly rows: readonly FeatureRow[];
  readonly late: ReadonlySet<string>;
}

/** The event's row of a view; undefined where it has none (late, or not a view of its source). */
export function eventRow(computed: EventFeatures, view: string): FeatureRow | undefined {
  for (const row of computed.rows) if (row.view === view) return row;
  return undefined;
}

export const EVENT_FEATURES = 'features.event';
