import type { AggregationSpec, FeatureView } from '../../topology/features.js';
import { addSquare, ExactSum, exactSpread, spreadOf, squaresExactly } from './exact-sum.js';
import { ValueCounts } from './value-counts.js';

/**
 * The aggregates of one window of one view, kept as its members come and go: members join at the
 * window's end and leave from its start (a window that slides), and every aggregate is a function
 * of the members alone, so a window kept this way and one computed afresh from its members give
 * the same values, bit for bit:
 *
 * - count and the count of each distinct value: exact integers;
 * - sum and mean: exact sums (`ExactSum`), rounded once when read;
 * - min and max: the oldest of the members' lowest (highest) values, kept in a monotonic queue
 *   while the window slides;
 * - last: the newest member's value (a member that leaves is never the newest while others hold a value);
 * - stddev: from the exact sum and the exact sum of squares (`exactSpread`).
 *
 * Only finite numbers count for the numeric aggregations; null and missing values do not count for
 * a distinct count.
 */

/** What the aggregates read of an event: its picked values. */
export interface MemberEvent {
  readonly v: Readonly<Record<string, number | string | null>>;
}

interface NumericNeeds {
  readonly field: string;
  readonly min: boolean;
  readonly max: boolean;
  readonly squares: boolean;
}

/**
 * A feature of the view and where its aggregate is read: the place of its field in `numeric` or in
 * `distinct` (-1 for a count).
 */
interface PlannedFeature {
  readonly name: string;
  readonly spec: AggregationSpec;
  readonly place: number;
}

interface ViewPlan {
  readonly features: readonly PlannedFeature[];
  readonly numeric: readonly NumericNeeds[];
  readonly distinct: readonly string[];
}

const plans = new WeakMap<FeatureView, ViewPlan>();

/** Which fields a view's aggregations read and what each needs kept (computed once per view). */
function planOf(view: FeatureView): ViewPlan {
  let plan = plans.get(view);
  if (plan) return plan;
  const entries = Object.entries(view.features);
  const numeric = new Map<string, { field: string; min: boolean; max: boolean; squares: boolean }>();
  const distinct = new Set<string>();
  for (const [, spec] of entries) {
    if (spec.kind === 'count') continue;
    const field = spec.field ?? '';
    if (spec.kind === 'distinct_count') {
      distinct.add(field);
      continue;
    }
    let needs = numeric.get(field);
    if (!needs) {
      needs = { field, min: false, max: false, squares: false };
      numeric.set(field, needs);
    }
    if (spec.kind === 'min') needs.min = true;
    if (spec.kind === 'max') needs.max = true;
    if (spec.kind === 'stddev') needs.squares = true;
  }
  const numericFields = [...numeric.keys()];
  const distinctFields = [...distinct];
  const features = entries.map(([name, spec]): PlannedFeature => {
    const field = spec.field ?? '';
    const place =
      spec.kind === 'count' ? -1 : spec.kind === 'distinct_count' ? distinctFields.indexOf(field) : numericFields.indexOf(field);
    return { name, spec, place };
  });
  plan = { features, numeric: [...numeric.values()], distinct: distinctFields };
  plans.set(view, plan);
  return plan;
}

export class WindowAggregates {
  private members = 0;
  private readonly fields: FieldWindow[];
  private readonly distinct: DistinctValues[];

  /** Whether members may leave: then extremes are kept in queues (see `startSliding`). */
  private sliding = false;

  private readonly plan: ViewPlan;

  constructor(view: FeatureView) {
    this.plan = planOf(view);
    this.fields = this.plan.numeric.map((needs) => new FieldWindow(needs));
    this.distinct = this.plan.distinct.map((field) => new DistinctValues(field));
  }

  get slides(): boolean {
    return this.sliding;
  }

  /**
   * The bytes of what grows with its members: the distinct-value tables' slots and the queues of
   * extremes' candidates (a sliding window's min or max). The fixed parts (a few hundred bytes)
   * are not counted.
   */
  get heldBytes(): number {
    let bytes = 0;
    for (const values of this.distinct) bytes += values.heldBytes;
    for (const window of this.fields) bytes += window.heldBytes;
    return bytes;
  }

  /**
   * Before the first member leaves: the queues of extremes, from the members (all of them, oldest
   * first). A window that is only filled and read, or only grows, never pays for them.
   */
  startSliding(members: readonly MemberEvent[]): void {
    for (const window of this.fields) window.startSliding(members);
    this.sliding = true;
  }

  /**
   * Whether `values` would read the members (a stddev over a value that `squaresExactly` refuses)
   * once `leaving` (the oldest members) have left and `joining` has joined.
   */
  readsMembersAfter(leaving: readonly MemberEvent[], joining: MemberEvent): boolean {
    for (const window of this.fields) {
      if (!window.squares) continue;
      let unsquared = window.unsquared;
      for (const member of leaving) if (unsquaredValue(member.v[window.field])) unsquared--;
      if (unsquaredValue(joining.v[window.field])) unsquared++;
      if (unsquared !== 0) return true;
    }
    return false;
  }

  /**
   * Whether a new window of `view` would read its members once `joining` is its first: what
   * `new WindowAggregates(view).readsMembersAfter([], joining)` answers, without making the window.
   */
  static readsMembersWhenFirst(view: FeatureView, joining: MemberEvent): boolean {
    for (const needs of planOf(view).numeric) if (needs.squares && unsquaredValue(joining.v[needs.field])) return true;
    return false;
  }

  /** A member joins at the window's end. */
  add(event: MemberEvent): void {
    this.members++;
    for (const window of this.fields) {
      const value = event.v[window.field];
      if (typeof value === 'number' && Number.isFinite(value)) window.add(value);
    }
    for (const values of this.distinct) {
      const value = event.v[values.field];
      if (value !== null && value !== undefined) values.add(String(value));
    }
  }

  /** The window's oldest member leaves (members leave in the order they joined). */
  remove(event: MemberEvent): void {
    if (!this.sliding) throw new Error('members cannot leave a window before it starts sliding');
    this.members--;
    for (const window of this.fields) {
      const value = event.v[window.field];
      if (typeof value === 'number' && Number.isFinite(value)) window.remove(value);
    }
    for (const values of this.distinct) {
      const value = event.v[values.field];
      if (value !== null && value !== undefined) values.remove(String(value));
    }
  }

  /**
   * The view's aggregations in the order of its features; null where one is undefined (no finite
   * value). `valuesOf` gives a field's finite member values, oldest first: only a stddev over a
   * window holding a value that `squaresExactly` refuses asks for them.
   */
  values(valuesOf: (field: string) => number[]): Record<string, number | null> {
    const values: Record<string, number | null> = {};
    for (const { name, spec, place } of this.plan.features) {
      if (spec.kind === 'count') values[name] = this.members;
      else if (spec.kind === 'distinct_count') values[name] = (this.distinct[place] as DistinctValues).size;
      else values[name] = numericValue(spec, this.fields[place] as FieldWindow, valuesOf);
    }
    return values;
  }
}

function numericValue(spec: AggregationSpec, window: FieldWindow, valuesOf: (field: string) => number[]): number | null {
  if (spec.kind === 'sum') return window.sum.value();
  if (window.count === 0) return null;
  switch (spec.kind) {
    case 'mean':
      return window.sum.value() / window.count;
    case 'min':
      return window.lowest();
    case 'max':
      return window.highest();
    case 'last':
      return window.latest;
    case 'stddev': {
      const squares = window.squares as ExactSum;
      // A value too large or too small for the sums of squares: the same formula over the members, in big integers.
      return window.unsquared === 0 ? exactSpread(window.count, window.sum, squares) : spreadOf(valuesOf(window.field));
    }
    case 'count':
    case 'distinct_count':
      throw new Error(`${spec.kind} is not a numeric field's aggregation`);
  }
}

/** A finite number whose square the sums of squares cannot hold exactly (`FieldWindow.unsquared` counts them). */
function unsquaredValue(value: number | string | null | undefined): boolean {
  return typeof value === 'number' && Number.isFinite(value) && !squaresExactly(value);
}

/** One numeric field's aggregates over a window's finite values. */
class FieldWindow {
  readonly field: string;
  count = 0;
  latest: number | null = null;
  readonly sum = new ExactSum();
  readonly squares: ExactSum | undefined;
  /** Members that `squaresExactly` refuses, left out of `squares`. */
  unsquared = 0;
  private low = Number.POSITIVE_INFINITY;
  private high = Number.NEGATIVE_INFINITY;
  private lows: ExtremeQueue | undefined;
  private highs: ExtremeQueue | undefined;

  constructor(private readonly needs: NumericNeeds) {
    this.field = needs.field;
    if (needs.squares) this.squares = new ExactSum();
  }

  startSliding(members: readonly MemberEvent[]): void {
    if (!this.needs.min && !this.needs.max) return;
    const lows = this.needs.min ? new ExtremeQueue(true) : undefined;
    const highs = this.needs.max ? new ExtremeQueue(false) : undefined;
    for (const member of members) {
      const value = member.v[this.field];
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      lows?.push(value);
      highs?.push(value);
    }
    this.lows = lows;
    this.highs = highs;
  }

  add(value: number): void {
    this.count++;
    this.sum.add(value);
    this.latest = value;
    if (this.squares) {
      if (squaresExactly(value)) addSquare(this.squares, value, 1);
      else this.unsquared++;
    }
    if (this.lows) this.lows.push(value);
    else if (value < this.low) this.low = value;
    if (this.highs) this.highs.push(value);
    else if (value > this.high) this.high = value;
  }

  remove(value: number): void {
    this.count--;
    this.sum.add(-value);
    if (this.squares) {
      if (squaresExactly(value)) addSquare(this.squares, value, -1);
      else this.unsquared--;
    }
    this.lows?.leave();
    this.highs?.leave();
    if (this.count === 0) this.latest = null;
  }

  lowest(): number {
    return this.lows ? this.lows.front() : this.low;
  }

  highest(): number {
    return this.highs ? this.highs.front() : this.high;
  }

  /** The bytes of its queues of extremes' candidates. */
  get heldBytes(): number {
    return (this.lows?.heldBytes ?? 0) + (this.highs?.heldBytes ?? 0);
  }
}

/**
 * The candidates for a sliding window's minimum (or maximum), oldest first: each is lower (higher)
 * than every later one, so the front is the extreme, and of equal extremes the oldest (as a pass
 * that keeps the first of equals finds it: ±0 compare equal, and which of them is kept matters).
 *
 * Members are told apart by the order they joined in (they leave in that order), not by identity:
 * a member that leaves may be a copy read back from the store, not the object that joined.
 */
class ExtremeQueue {
  private values: number[] = [];
  /** The join order of each candidate: the queue's `joined` when it was pushed. */
  private orders: number[] = [];
  private head = 0;
  /** Members pushed so far, and members that left so far: the oldest member's order is `left`. */
  private joined = 0;
  private left = 0;

  constructor(private readonly lowest: boolean) {}

  push(value: number): void {
    const { values, orders } = this;
    while (values.length > this.head) {
      const newest = values[values.length - 1] as number;
      if (this.lowest ? newest <= value : newest >= value) break;
      values.pop();
      orders.pop();
    }
    values.push(value);
    orders.push(this.joined++);
  }

  /** The window's oldest member leaves: it goes if it is the front (a later one pushed out any other). */
  leave(): void {
    const order = this.left++;
    if (this.head === this.values.length || this.orders[this.head] !== order) return;
    this.head++;
    if (this.head === this.values.length) {
      this.values = [];
      this.orders = [];
      this.head = 0;
    } else if (this.head >= 64 && 2 * this.head >= this.values.length) {
      this.values.splice(0, this.head);
      this.orders.splice(0, this.head);
      this.head = 0;
    }
  }

  front(): number {
    return this.values[this.head] as number;
  }

  /** The bytes of its arrays' elements: a candidate's value and its join order, 8 bytes each. */
  get heldBytes(): number {
    return this.values.length * 16;
  }
}

/** How many members hold each value of a field (as a string, as distinct counts compare them). */
class DistinctValues {
  private readonly counts = new ValueCounts();

  constructor(readonly field: string) {}

  add(value: string): void {
    this.counts.add(value);
  }

  remove(value: string): void {
    this.counts.remove(value);
  }

  get size(): number {
    return this.counts.size;
  }

  get heldBytes(): number {
    return this.counts.heldBytes;
  }
}
