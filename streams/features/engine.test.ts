import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../common/random.js';
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
  type FeatureView,
  type FeatureViewInput,
  type FeatureWindow,
} from '../../topology/features.js';
import { lookBack } from '../runtime/windows/window.js';
import { emptyEntityState, SourceFeatures, type EntityState, type FeatureRow } from './engine.js';
import type { EntityHead } from './entity-history.js';
import { entityStoreSerde } from './entity-state-serde.js';
import { payments } from '../../topology/fixtures/payments.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

function view(window: FeatureWindow, extra: Partial<FeatureViewInput> = {}) {
  return featureView({
    name: 'v',
    source: payments,
    window,
    features: {
      n: count(),
      total: sum('amount'),
      avg: mean('amount'),
      low: min('amount'),
      high: max('amount'),
      latest: last('amount'),
      merchants: distinctCount('merchant'),
      spread: stddev('amount'),
    },
    owner: 'test',
    description: 'test',
    ...extra,
  });
}

/** Feeds events (time in minutes, amount, merchant) in arrival order; returns each event's row or null when late. */
function run(
  window: FeatureWindow,
  events: [number, number, string?][],
  extra: Partial<FeatureViewInput> = {},
): { rows: (FeatureRow | null)[]; state: EntityState } {
  const features = new SourceFeatures(payments, [view(window, extra)], new Map([['v', 3]]));
  const state = emptyEntityState();
  const rows = events.map(([minute, amount, merchant], index) => {
    const result = features.apply(state, {
      entity: 'c1',
      eventId: `e${index}`,
      eventTime: minute * MIN,
      sequence: index,
      value: { amount, merchant: merchant ?? 'm1' },
    });
    return result.rows[0] ?? null;
  });
  return { rows, state };
}

describe('feature computation', () => {
  it('computes every aggregation over a sliding window (t − size, t]', () => {
    const { rows } = run(slidingWindow('1h'), [
      [0, 10, 'a'],
      [30, 20, 'b'],
      [60, 30, 'a'],
      [61, 40, 'c'],
    ]);
    // At 60 min the window is (0, 60]: the event at 0 has left it.
    expect(rows[2]?.values).toEqual({ n: 2, total: 50, avg: 25, low: 20, high: 30, latest: 30, merchants: 2, spread: 5 });
    expect(rows[2]).toMatchObject({ version: 3, windowStart: 0, windowEnd: 60 * MIN, eventTime: 60 * MIN, eventId: 'e2' });
    // At 61 min: (1, 61] holds 30, 60, 61.
    expect(rows[3]?.values).toMatchObject({ n: 3, total: 90, avg: 30, low: 20, high: 40, latest: 40, merchants: 3 });
    expect(rows[3]?.values.spread).toBeCloseTo(Math.sqrt(200 / 3), 12);
    expect(rows[0]?.values).toEqual({ n: 1, total: 10, avg: 10, low: 10, high: 10, latest: 10, merchants: 1, spread: 0 });
  });

  it('tumbling windows hold [aligned start, t]', () => {
    const { rows } = run(tumblingWindow('1h'), [
      [10, 1],
      [59, 2],
      [60, 4],
      [119, 8],
    ]);
    expect(rows.map((row) => row?.values.total)).toEqual([1, 3, 4, 12]);
    expect(rows[2]).toMatchObject({ windowStart: HOUR, windowEnd: 2 * HOUR });
  });

  it('hopping windows look back to the earliest hop-aligned start whose window still holds t', () => {
    // size 1h, advance 15 min: at 70 min the earliest window holding 70 starts at 15 (15..75).
    const { rows } = run(hoppingWindow('1h', '15m'), [
      [0, 1],
      [14, 2],
      [15, 4],
      [70, 8],
      [75, 16],
    ]);
    expect(rows[3]?.values.total).toBe(12);
    expect(rows[3]).toMatchObject({ windowStart: 15 * MIN, windowEnd: 75 * MIN });
    // At 75 the earliest window holding it starts at 30: only 70 and 75 count.
    expect(rows[4]?.values.total).toBe(24);
  });

  it('session windows join events no further apart than the gap', () => {
    const { rows } = run(sessionWindow('10m'), [
      [0, 1],
      [5, 2],
      [14, 4],
      [30, 8],
      [39, 16],
    ]);
    expect(rows.map((row) => row?.values.total)).toEqual([1, 3, 7, 8, 24]);
    expect(rows[2]).toMatchObject({ windowStart: 0, windowEnd: 14 * MIN });
    expect(rows[4]).toMatchObject({ windowStart: 30 * MIN });
  });

  it('an out-of-order event within the grace counts from then on, and sees only its past', () => {
    const { rows } = run(
      slidingWindow('1h'),
      [
        [10, 1],
        [50, 2],
        [40, 4],
        [55, 8],
      ],
      { grace: '15m' },
    );
    // The event at 40 arrives after 50: its own row holds 10 and 40 (not 50, which is later).
    expect(rows[2]?.values.total).toBe(5);
    expect(rows[2]?.values.latest).toBe(4);
    // At 55 all four count; "last" is by event time: 8.
    expect(rows[3]?.values).toMatchObject({ n: 4, total: 15, latest: 8 });
  });

  it('a late event (beyond the grace) gets no row and never counts', () => {
    const features = new SourceFeatures(payments, [view(slidingWindow('1h'), { grace: '5m' })], new Map());
    const state = emptyEntityState();
    const times = [
      [10, 1],
      [50, 2],
      [40, 4],
      [45, 8],
      [55, 16],
    ] as const;
    const results = times.map(([minute, amount], index) =>
      features.apply(state, { entity: 'c1', eventId: `e${index}`, eventTime: minute * MIN, sequence: index, value: { amount } }),
    );
    expect(results.map((result) => result.late)).toEqual([[], [], ['v'], [], []]);
    expect(results[3]?.rows[0]?.values.total).toBe(9); // 1 at 10 + 8 at 45 (40 was late, 50 is later)
    expect(results[4]?.rows[0]?.values.total).toBe(27); // 10, 45, 50, 55
  });

  it('equal event times count in arrival order', () => {
    const { rows } = run(slidingWindow('1h'), [
      [5, 1],
      [5, 2],
      [5, 4],
    ]);
    expect(rows.map((row) => row?.values.total)).toEqual([1, 3, 7]);
    expect(rows.map((row) => row?.values.latest)).toEqual([1, 2, 4]);
  });

  it('keeps only the events a later row can need, and the newest row per view', () => {
    const { state } = run(
      slidingWindow('1h'),
      [
        [0, 1],
        [30, 2],
        [200, 4],
        [100, 8],
      ],
      { grace: '2h' },
    );
    // Retention = 1 h window + 2 h grace: at newest 200 min, events after minute 20 remain.
    expect(state.events.map((event) => event.t / MIN)).toEqual([30, 100, 200]);
    expect(state.latest.v?.eventTime).toBe(200 * MIN);
  });

  it('stores entity state compactly and reads it back unchanged', () => {
    const { state } = run(
      slidingWindow('1h'),
      [
        [0, 1.5, 'a'],
        [5, 2, 'b'],
        [3, 4],
      ],
      { grace: '1h' },
    );
    const serde = entityStoreSerde();
    const segment = { kind: 'segment', events: state.events } as const;
    const head: EntityHead = { kind: 'head', newest: state.newest, latest: state.latest, segments: [0], nextSegment: 1, trim: 0 };
    const bytes = Buffer.concat([serde.serialize(segment), serde.serialize(head)]);
    expect(serde.deserialize(serde.serialize(segment))).toEqual(segment);
    expect(serde.deserialize(serde.serialize(head))).toEqual(head);
    expect(bytes.length).toBeLessThan(Buffer.byteLength(JSON.stringify(state)));
    expect(() => serde.deserialize(Buffer.from('{"x":1}'))).toThrow();
  });

  it('null and missing fields are skipped; undefined aggregates are null', () => {
    const features = new SourceFeatures(payments, [view(slidingWindow('1h'))], new Map());
    const state = emptyEntityState();
    const { rows } = features.apply(state, { entity: 'c1', eventId: 'e', eventTime: 0, sequence: 0, value: {} });
    expect(rows[0]?.values).toEqual({ n: 1, total: 0, avg: null, low: null, high: null, latest: null, merchants: 0, spread: null });
  });

  it('derived features are computed from the aggregations, non-finite results become null', () => {
    const derivedView = featureView({
      name: 'd',
      source: payments,
      window: slidingWindow('1h'),
      features: { n: count(), total: sum('amount') },
      derive: ({ n, total }) => ({ per_event: n && typeof total === 'number' ? total / n : null, ratio: (total ?? 0) / 0 }),
      owner: 'o',
      description: 'd',
    });
    expect(derivedView.derived).toEqual(['per_event', 'ratio']);
    const features = new SourceFeatures(payments, [derivedView], new Map());
    const state = emptyEntityState();
    features.apply(state, { entity: 'c', eventId: 'a', eventTime: 0, sequence: 0, value: { amount: 3 } });
    const { rows } = features.apply(state, { entity: 'c', eventId: 'b', eventTime: 1, sequence: 1, value: { amount: 5 } });
    expect(rows[0]?.values).toEqual({ n: 2, total: 8, per_event: 4, ratio: null });
  });

  it('a changed definition has another hash; the same definition the same one', () => {
    const base = view(slidingWindow('1h'));
    expect(view(slidingWindow('1h')).hash).toBe(base.hash);
    expect(view(slidingWindow('2h')).hash).not.toBe(base.hash);
    expect(view(slidingWindow('1h'), { grace: '1m' }).hash).not.toBe(base.hash);
    expect(view(slidingWindow('1h'), { owner: 'someone else' }).hash).toBe(base.hash);
  });

  it('rejects definitions that cannot work', () => {
    expect(() =>
      featureView({ name: 'Bad', source: payments, window: slidingWindow('1h'), features: { n: count() }, owner: 'o', description: 'd' }),
    ).toThrow(/lower-case/);
    expect(() =>
      featureView({ name: 'v', source: payments, window: slidingWindow('1h'), features: {}, owner: 'o', description: 'd' }),
    ).toThrow(/no features/);
    expect(() => hoppingWindow('1h', '2h')).toThrow(/exceeds/);
    expect(() => slidingWindow(0)).toThrow(/positive/);
  });
});

/**
 * The plain algorithm the engine's fast paths must equal, bit for bit: every window's members
 * filtered into an array, each aggregation computed from them in exact (BigInt) arithmetic and
 * rounded as the engine promises: the sum rounded once, the mean as that sum over the count, the
 * standard deviation as √(round(n·Σx² − (Σx)²) / n²).
 */
function referenceRows(
  views: readonly FeatureView[],
  arrivals: readonly ReferenceArrival[],
): { rows: (ReferenceRow | null)[][]; history: { t: number; seq: number }[] } {
  const retentionMs = Math.max(0, ...views.map((candidate) => candidate.retentionMs));
  const history: { t: number; seq: number; newest: number | null; amount: unknown; merchant: unknown }[] = [];
  let newest: number | null = null;
  const rows = arrivals.map(({ t, seq, amount, merchant }) => {
    if (history.some((existing) => existing.seq === seq && existing.t === t)) return [];
    const current = { t, seq, newest, amount, merchant };
    let at = history.length;
    while (at > 0 && (history[at - 1]?.t ?? 0) > t) at--;
    history.splice(at, 0, current);
    if (newest === null || t > newest) newest = t;
    const horizon = newest - retentionMs;
    while (history.length > 0 && (history[0]?.t ?? 0) <= horizon) history.shift();
    return views.map((candidate) => {
      const late = (event: { t: number; newest: number | null }) => event.newest !== null && event.t < event.newest - candidate.graceMs;
      if (late(current)) return null;
      const past = history.slice(0, history.indexOf(current) + 1);
      let members: typeof past;
      let windowStart: number;
      let windowEnd: number;
      if (candidate.window.kind === 'session') {
        const eligible = past.filter((event) => !late(event));
        let first = eligible.length - 1;
        while (first > 0) {
          const previous = eligible[first - 1];
          const next = eligible[first];
          if (!previous || !next || next.t - previous.t > candidate.window.gapMs || t - previous.t >= candidate.window.maxSpanMs) break;
          first--;
        }
        members = eligible.slice(Math.max(first, 0));
        windowStart = members[0]?.t ?? t;
        windowEnd = t;
      } else {
        const { start, end, startInclusive } = lookBack(candidate.window, t);
        windowStart = start;
        windowEnd = end;
        members = past.filter(
          (event, index) => (index === past.length - 1 || (startInclusive ? event.t >= start : event.t > start)) && !late(event),
        );
      }
      const values: Record<string, number | null> = {};
      for (const [name, spec] of Object.entries(candidate.features)) {
        const numbers = members
          .map((event) => (spec.field === 'merchant' ? event.merchant : event.amount))
          .filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
        if (spec.kind === 'count') values[name] = members.length;
        else if (spec.kind === 'distinct_count')
          values[name] = new Set(
            members
              .map((event) => event.merchant)
              .filter((value) => value !== null && value !== undefined)
              .map(String),
          ).size;
        else if (spec.kind === 'sum') values[name] = exactSum(numbers);
        else if (numbers.length === 0) values[name] = null;
        else if (spec.kind === 'mean') values[name] = exactSum(numbers) / numbers.length;
        else if (spec.kind === 'min') values[name] = numbers.reduce((low, value) => (value < low ? value : low), Number.POSITIVE_INFINITY);
        else if (spec.kind === 'max')
          values[name] = numbers.reduce((high, value) => (value > high ? value : high), Number.NEGATIVE_INFINITY);
        else if (spec.kind === 'last') values[name] = numbers.at(-1) ?? null;
        else values[name] = exactSpread(numbers);
      }
      return { windowStart, windowEnd, values };
    });
  });
  return { rows, history: history.map(({ t, seq }) => ({ t, seq })) };
}

const exactValues = new Map<number, { integer: bigint; bits: number }>();

/** A double as `integer` × 2^-`bits`, exactly (the fewest fraction bits). */
function exactOf(value: number): { integer: bigint; bits: number } {
  let exact = exactValues.get(value);
  if (exact) return exact;
  let bits = 0;
  let mantissa = Math.abs(value);
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    bits++;
  }
  exact = { integer: value < 0 ? -BigInt(mantissa) : BigInt(mantissa), bits };
  exactValues.set(value, exact);
  return exact;
}

/** The values as integers over one common power of two: `integers` × 2^-`bits`. */
function scaledTogether(numbers: readonly number[]): { integers: bigint[]; bits: number } {
  const exact = numbers.map(exactOf);
  const bits = Math.max(0, ...exact.map((value) => value.bits));
  return { integers: exact.map((value) => value.integer << BigInt(bits - value.bits)), bits };
}

/** A positive integer's leading 64 bits, the lowest one sticky (set when any bit below was): Number() then rounds as the whole would. */
function leading(integer: bigint): { top: bigint; shift: number } {
  const shift = Math.max(0, integer.toString(2).length - 64);
  const rest = integer & ((1n << BigInt(shift)) - 1n);
  return { top: (integer >> BigInt(shift)) | (rest === 0n ? 0n : 1n), shift };
}

function timesPowerOfTwo(value: number, exponent: number): number {
  let result = value;
  for (let left = exponent; left !== 0;) {
    const step = Math.max(-1000, Math.min(1000, left));
    result *= 2 ** step;
    left -= step;
  }
  return result;
}

/** `integer` × 2^`exponent` (exponent ≥ −1074) rounded once to the nearest double, ties to even, subnormals included. */
function toDouble(integer: bigint, exponent: number): number {
  const negative = integer < 0n;
  const units = (negative ? -integer : integer) << BigInt(exponent + 1074);
  // Fewer than 2^53 units of 2^-1074 are a double exactly; more, and the result is a normal double.
  if (units < 2n ** 53n) return (negative ? -1 : 1) * Number(units) * 2 ** -1074;
  const { top, shift } = leading(units);
  const value = timesPowerOfTwo(Number(top), shift - 1074);
  return negative ? -value : value;
}

function exactSum(numbers: readonly number[]): number {
  const { integers, bits } = scaledTogether(numbers);
  return toDouble(
    integers.reduce((total, value) => total + value, 0n),
    -bits,
  );
}

/** √(round(n·Σx² − (Σx)²) / n²), the difference rounded to 53 bits at any scale (no overflow midway). */
function exactSpread(numbers: readonly number[]): number {
  const { integers, bits } = scaledTogether(numbers);
  const count = BigInt(numbers.length);
  const sum = integers.reduce((total, value) => total + value, 0n);
  const squares = integers.reduce((total, value) => total + value ** 2n, 0n);
  const difference = count * squares - sum * sum;
  if (difference === 0n) return 0;
  const { top, shift } = leading(difference);
  let rounded = Number(top);
  let exponent = shift - 2 * bits;
  if (exponent % 2 !== 0) {
    rounded *= 2;
    exponent--;
  }
  return timesPowerOfTwo(Math.sqrt(rounded / (numbers.length * numbers.length)), exponent / 2);
}

interface ReferenceRow {
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly values: Record<string, number | null>;
}

interface ReferenceArrival {
  readonly t: number;
  readonly seq: number;
  readonly amount: unknown;
  readonly merchant: unknown;
}

describe('feature computation against the plain algorithm', () => {
  /** A small deterministic generator (mulberry32), so that a failure can be replayed from its seed. */
  function random(seed: number): () => number {
    const generator = seededRandom(seed);
    return () => generator.next();
  }

  const windows: [string, FeatureWindow][] = [
    ['sliding', slidingWindow('30m')],
    ['tumbling', tumblingWindow('20m')],
    ['hopping', hoppingWindow('30m', '10m')],
    ['session', sessionWindow('5m', '40m')],
    // Windows of a few hundred events: the engine adds each event to the window before it.
    ['long sliding', slidingWindow('8h')],
    ['long sliding, moving', slidingWindow('2h')],
    ['long tumbling', tumblingWindow('4h')],
    ['long hopping', hoppingWindow('8h', '1h')],
  ];

  /**
   * 400 arrivals of one entity: whole minutes, so that many share a time (in arrival order), some up
   * to 20 minutes late, replayed duplicates, and null, NaN, infinite and odd values.
   */
  function arrivalsFor(seed: number, extremes = false): ReferenceArrival[] {
    const next = random(seed * 7919);
    const arrivals: ReferenceArrival[] = [];
    let clock = 0;
    for (let index = 0; index < 400; index++) {
      const roll = next();
      if (roll < 0.05 && arrivals.length > 0) {
        // A replayed duplicate of an earlier arrival.
        arrivals.push(arrivals[Math.floor(next() * arrivals.length)] as ReferenceArrival);
        continue;
      }
      clock += Math.floor(next() * 3) * MIN;
      const t = roll < 0.2 ? clock - Math.floor(next() * 20) * MIN : clock;
      const amountRoll = next();
      const amount =
        amountRoll < 0.05
          ? null
          : amountRoll < 0.08
            ? Number.NaN
            : amountRoll < 0.1
              ? Number.POSITIVE_INFINITY
              : extremes && amountRoll < 0.4
                ? extreme(next)
                : (next() - 0.3) * 1000 + 0.1;
      const merchantRoll = next();
      const merchant = merchantRoll < 0.1 ? null : merchantRoll < 0.2 ? Math.floor(next() * 3) : `m${Math.floor(next() * 5)}`;
      arrivals.push({ t, seq: index, amount, merchant });
    }
    return arrivals;
  }

  /** Values at the edges of doubles: tiny, subnormal, huge, halfway ties, and values too large or small to square. */
  function extreme(next: () => number): number {
    const choices = [
      () => 1e-155 * (1 + next()),
      () => -1e-160 * next(),
      () => 3e129 * (1 + next()),
      () => 1e300 * (1 + next()),
      () => -1e300,
      () => 2 ** 1000,
      () => -(2 ** 1000),
      () => 2 ** 947,
      () => 5e-324,
      () => 1.5 * 2 ** -1022,
      () => -0,
      () => 0,
    ];
    return (choices[Math.floor(next() * choices.length)] as () => number)();
  }

  /** The rows of one arrival as the reference gives them (null for a view it came late for). */
  function rowsOf(features: SourceFeatures, views: readonly FeatureView[], state: EntityState, arrival: ReferenceArrival) {
    const { t, seq, amount, merchant } = arrival;
    const result = features.apply(state, { entity: 'c', eventId: `e${seq}`, eventTime: t, sequence: seq, value: { amount, merchant } });
    if (result.duplicate) return [];
    return views.map((candidate) => {
      const row = result.rows.find((found) => found.view === candidate.name);
      return row ? { windowStart: row.windowStart, windowEnd: row.windowEnd, values: row.values } : null;
    });
  }

  for (const [kind, window] of windows) {
    it(`${kind} windows: the same rows, bit for bit, with late, early, equal-time, replayed and odd values`, () => {
      const views = [
        view(window, { name: 'tight', grace: '2m' }),
        view(window, { name: 'loose', grace: '15m' }),
        view(window, { name: 'none', grace: '0s' }),
      ];
      const features = new SourceFeatures(payments, views, new Map());
      for (let seed = 1; seed <= 20; seed++) {
        const state = emptyEntityState();
        const arrivals = arrivalsFor(seed);
        const expected = referenceRows(views, arrivals);
        const actual = arrivals.map(({ t, seq, amount, merchant }) => {
          const result = features.apply(state, {
            entity: 'c',
            eventId: `e${seq}`,
            eventTime: t,
            sequence: seq,
            value: { amount, merchant },
          });
          if (result.duplicate) return [];
          expect(result.late).toEqual(
            views.filter((candidate) => !result.rows.some((row) => row.view === candidate.name)).map(({ name }) => name),
          );
          return views.map((candidate) => {
            const row = result.rows.find((found) => found.view === candidate.name);
            return row ? { windowStart: row.windowStart, windowEnd: row.windowEnd, values: row.values } : null;
          });
        });
        expect(actual, `seed ${seed * 7919}`).toEqual(expected.rows);
        expect(state.events.map(({ t, seq }) => ({ t, seq }))).toEqual(expected.history);
        const equalTimes = arrivals.filter((arrival, index) => arrivals.findIndex((other) => other.t === arrival.t) !== index);
        expect(equalTimes.length).toBeGreaterThan(20);
      }
    });
  }

  it('values at the edges of doubles: the same rows, bit for bit, sliding or filled afresh', () => {
    const views = [
      view(slidingWindow('2h'), { name: 'sliding', grace: '15m' }),
      view(tumblingWindow('4h'), { name: 'tumbling', grace: '2m' }),
      view(sessionWindow('5m', '40m'), { name: 'session', grace: '0s' }),
    ];
    for (let seed = 1; seed <= 10; seed++) {
      const features = new SourceFeatures(payments, views, new Map());
      const state = emptyEntityState();
      const arrivals = arrivalsFor(seed, true);
      const actual = arrivals.map((arrival) => rowsOf(features, views, state, arrival));
      expect(actual, `seed ${seed}`).toEqual(referenceRows(views, arrivals).rows);
    }
  });

  it('a history taken back to an earlier state (an aborted transaction) and continued differently gives the same rows', () => {
    // The live stage keeps the events of a committed history in memory and, after an abort, goes
    // on from them with new ones: what the engine remembers of a window must not outlive that.
    const views = [
      view(slidingWindow('8h'), { name: 'tight', grace: '2m' }),
      view(hoppingWindow('8h', '1h'), { name: 'loose', grace: '15m' }),
    ];
    const features = new SourceFeatures(payments, views, new Map());
    let aborts = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed * 104_729);
      // Two runs of arrivals: what a transaction took before it failed, and what came after.
      const arrivals = arrivalsFor(seed);
      const others = arrivalsFor(seed + 1000).map((arrival) => ({ ...arrival, seq: arrival.seq + 10_000 }));
      let state = emptyEntityState();
      const taken: ReferenceArrival[] = [];
      const actual: ReturnType<typeof rowsOf>[] = [];
      let committed = { state: copyOf(state), taken: 0 };
      let other = 0;
      for (const arrival of arrivals) {
        taken.push(arrival);
        actual.push(rowsOf(features, views, state, arrival));
        const roll = next();
        if (roll < 0.1) committed = { state: copyOf(state), taken: taken.length };
        else if (roll < 0.15) {
          // Abort: back to the committed state, then a few other arrivals in the place of what was lost.
          aborts++;
          state = copyOf(committed.state);
          taken.length = committed.taken;
          actual.length = committed.taken;
          for (let extra = 0; extra < 3 && other < others.length; extra++, other++) {
            const replacement = others[other] as ReferenceArrival;
            taken.push(replacement);
            actual.push(rowsOf(features, views, state, replacement));
          }
        }
      }
      expect(actual, `seed ${seed}`).toEqual(referenceRows(views, taken).rows);
    }
    expect(aborts).toBeGreaterThan(100);
  });

  /** A state as the store keeps it: the same event objects in a new history (never changed in place). */
  function copyOf(state: EntityState): EntityState {
    return { newest: state.newest, events: [...state.events], latest: { ...state.latest } };
  }
});
