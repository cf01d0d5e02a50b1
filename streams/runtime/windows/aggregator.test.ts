import { describe, expect, it } from 'vitest';
import { WatermarkTracker } from '../watermarks.js';
import { parseDuration } from '../../../common/durations.js';
import { WindowedAggregator, type Aggregation, type LatePolicy } from './aggregator.js';
import { fixedWindowsFor, hopping, session, sliding, tumbling, type WindowSpec } from './window.js';

const sum: Aggregation<number, number> = { init: () => 0, add: (total, value) => total + value, merge: (a, b) => a + b };
const values: Aggregation<number, number[]> = {
  init: () => [],
  add: (list, value) => [...list, value],
  merge: (a, b) => [...a, ...b].sort((x, y) => x - y),
};

function aggregator(window: WindowSpec, options: { graceMs?: number; latePolicy?: LatePolicy; retentionMs?: number } = {}) {
  return new WindowedAggregator<number, number>({ window, aggregation: sum, ...options });
}

describe('window assignment', () => {
  it('tumbling: one half-open window per event', () => {
    expect(fixedWindowsFor(tumbling(10), 0)).toEqual([{ start: 0, end: 10 }]);
    expect(fixedWindowsFor(tumbling(10), 9)).toEqual([{ start: 0, end: 10 }]);
    expect(fixedWindowsFor(tumbling(10), 10)).toEqual([{ start: 10, end: 20 }]);
  });

  it('hopping: every window that covers the event, oldest first', () => {
    expect(fixedWindowsFor(hopping(10, 5), 12)).toEqual([
      { start: 5, end: 15 },
      { start: 10, end: 20 },
    ]);
    expect(fixedWindowsFor(hopping(10, 5), 10)).toEqual([
      { start: 5, end: 15 },
      { start: 10, end: 20 },
    ]);
    expect(fixedWindowsFor(hopping(30, 10), 35)).toHaveLength(3);
  });

  it('rejects nonsense specs', () => {
    expect(() => tumbling(0)).toThrow(/positive/);
    expect(() => hopping(10, 20)).toThrow(/exceeds the size/);
    expect(() => session(-1)).toThrow(/positive/);
    expect(() => new WindowedAggregator({ window: session(5), aggregation: { init: () => 0, add: (a: number) => a } })).toThrow(/merge/);
  });

  it('parses durations', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration(42)).toBe(42);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
  });
});

describe('tumbling windows', () => {
  it('aggregates per key and window, emitting an update per record', () => {
    const agg = aggregator(tumbling(10));
    expect(agg.add('a', 1, 5, -Infinity).updates).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 5, final: false }]);
    expect(agg.add('a', 7, 2, 7).updates[0]?.value).toBe(7);
    expect(agg.add('b', 8, 1, 8).updates[0]?.value).toBe(1);
    expect(agg.add('a', 12, 3, 12).updates).toEqual([{ key: 'a', window: { start: 10, end: 20 }, value: 3, final: false }]);
  });

  it('closes windows at end + grace, once, and accepts out-of-order records until then', () => {
    const agg = aggregator(tumbling(10), { graceMs: 5 });
    agg.add('a', 3, 1, 3);
    agg.add('a', 11, 1, 11);
    expect(agg.advance(11)).toEqual([]);
    // Out of order but within grace: still counted in [0, 10).
    expect(agg.add('a', 8, 10, 14).lateness).toBe('on-time');
    expect(agg.advance(14)).toEqual([]);
    expect(agg.advance(15)).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 11, final: true }]);
    expect(agg.advance(16)).toEqual([]);
    expect(agg.windowsOf('a').map((result) => result.window.start)).toEqual([10]);
  });

  it('drops (and counts) late records by default', () => {
    const agg = aggregator(tumbling(10));
    agg.add('a', 3, 1, 3);
    agg.advance(10);
    expect(agg.add('a', 4, 100, 10)).toEqual({ updates: [], removed: [], lateness: 'dropped' });
    expect(agg.lateRecords).toBe(1);
  });

  it('hands late records back for dead-lettering under that policy', () => {
    const agg = aggregator(tumbling(10), { latePolicy: 'dead-letter' });
    agg.add('a', 3, 1, 20);
    expect(agg.add('a', 3, 1, 20).lateness).toBe('dead-letter');
  });

  it('updates a closed window that is still retained under the update policy', () => {
    const agg = aggregator(tumbling(10), { latePolicy: 'update', retentionMs: 100 });
    agg.add('a', 3, 1, 3);
    expect(agg.advance(10)).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 1, final: true }]);
    expect(agg.add('a', 4, 5, 30)).toEqual({
      updates: [{ key: 'a', window: { start: 0, end: 10 }, value: 6, final: true }],
      removed: [],
      lateness: 'updated',
    });
    agg.advance(200);
    expect(agg.add('a', 4, 5, 200).lateness).toBe('dropped');
  });
});

describe('hopping windows', () => {
  it('updates every overlapping window and closes them in turn', () => {
    const agg = aggregator(hopping(10, 5));
    expect(agg.add('a', 7, 1, 7).updates.map((result) => result.window)).toEqual([
      { start: 0, end: 10 },
      { start: 5, end: 15 },
    ]);
    agg.add('a', 12, 2, 12);
    expect(agg.advance(12)).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 1, final: true }]);
    expect(agg.windowsOf('a').map((result) => [result.window.start, result.value])).toEqual([
      [5, 3],
      [10, 2],
    ]);
  });

  it('folds a record into its open windows even when one of its windows has closed', () => {
    const agg = aggregator(hopping(10, 5));
    agg.add('a', 7, 1, 7);
    agg.advance(12);
    const outcome = agg.add('a', 8, 4, 12);
    expect(outcome.lateness).toBe('on-time');
    expect(outcome.updates).toEqual([{ key: 'a', window: { start: 5, end: 15 }, value: 5, final: false }]);
  });
});

describe('sliding windows: the window at t holds (t − size, t]', () => {
  it('aggregates the events of the last size milliseconds at every event', () => {
    const agg = aggregator(sliding(10));
    expect(agg.add('a', 0, 1, 0).updates[0]).toEqual({ key: 'a', window: { start: -10, end: 0 }, value: 1, final: false });
    expect(agg.add('a', 5, 2, 5).updates[0]?.value).toBe(3);
    // 0 is outside (10 − 10, 10]: excluded; 5 is in.
    expect(agg.add('a', 10, 4, 10).updates[0]?.value).toBe(6);
    expect(agg.add('a', 15, 8, 15).updates[0]?.value).toBe(12);
  });

  it('corrects later windows when an out-of-order event arrives within grace', () => {
    const agg = aggregator(sliding(10), { graceMs: 20 });
    agg.add('a', 10, 1, 10);
    agg.add('a', 14, 1, 14);
    const outcome = agg.add('a', 6, 100, 14);
    expect(outcome.updates.map((result) => [result.window.end, result.value])).toEqual([
      [6, 100],
      [10, 101],
      [14, 102],
    ]);
  });

  it('closes windows at end + grace and applies the late policy to records whose window has closed', () => {
    const agg = aggregator(sliding(10), { graceMs: 2 });
    agg.add('a', 10, 1, 10);
    expect(agg.advance(12)).toEqual([]);
    expect(agg.advance(13)).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 1, final: true }]);
    expect(agg.add('a', 9, 5, 13).lateness).toBe('dropped');
    const dead = aggregator(sliding(10), { latePolicy: 'dead-letter' });
    dead.add('a', 10, 1, 10);
    // The watermark says nothing older than 10 is still expected: 9 is late.
    expect(dead.add('a', 9, 5, 10).lateness).toBe('dead-letter');
  });

  it('under the update policy, a late event updates the retained windows that contain it', () => {
    const agg = aggregator(sliding(10), { latePolicy: 'update', retentionMs: 50 });
    agg.add('a', 10, 1, 10);
    agg.advance(11);
    const outcome = agg.add('a', 9, 5, 11);
    expect(outcome.lateness).toBe('updated');
    expect(outcome.updates.map((result) => [result.window.end, result.value, result.final])).toEqual([
      [9, 5, true],
      [10, 6, true],
    ]);
  });
});

describe('session windows', () => {
  it('groups events no further apart than the gap, and merges sessions an event bridges', () => {
    const agg = new WindowedAggregator<number, number[]>({ window: session(5), aggregation: values });
    agg.add('a', 0, 1, 0);
    agg.add('a', 3, 2, 3);
    expect(agg.windowsOf('a')).toEqual([{ key: 'a', window: { start: 0, end: 3 }, value: [1, 2], final: false }]);
    agg.add('a', 20, 3, 20);
    expect(agg.windowsOf('a').map((result) => result.window)).toEqual([
      { start: 0, end: 3 },
      { start: 20, end: 20 },
    ]);
  });

  it('bridging two sessions removes both and emits the merged one', () => {
    const agg = new WindowedAggregator<number, number[]>({ window: session(5), aggregation: values, graceMs: 100 });
    agg.add('a', 0, 1, 0);
    agg.add('a', 10, 3, 10);
    const outcome = agg.add('a', 5, 2, 10);
    expect(outcome.updates).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: [1, 2, 3], final: false }]);
    expect(outcome.removed).toEqual([
      { key: 'a', window: { start: 0, end: 0 } },
      { key: 'a', window: { start: 10, end: 10 } },
    ]);
  });

  it('closes a session once the watermark passes its end + gap + grace', () => {
    const agg = aggregator(session(5), { graceMs: 1 });
    agg.add('a', 0, 1, 0);
    agg.add('a', 2, 1, 2);
    expect(agg.advance(8)).toEqual([]);
    expect(agg.advance(9)).toEqual([{ key: 'a', window: { start: 0, end: 2 }, value: 2, final: true }]);
    expect(agg.add('a', 4, 1, 9).lateness).toBe('dropped');
    expect(agg.add('a', 30, 1, 30).lateness).toBe('on-time');
  });

  it('applies the dead-letter and update policies to late session records', () => {
    const dead = aggregator(session(5), { latePolicy: 'dead-letter' });
    dead.add('a', 0, 1, 20);
    expect(dead.add('a', 1, 1, 20).lateness).toBe('dead-letter');
    const update = aggregator(session(5), { latePolicy: 'update', retentionMs: 100 });
    update.add('a', 0, 1, 0);
    update.advance(20);
    expect(update.add('a', 1, 1, 20)).toEqual({
      updates: [{ key: 'a', window: { start: 0, end: 1 }, value: 2, final: true }],
      removed: [{ key: 'a', window: { start: 0, end: 0 } }],
      lateness: 'updated',
    });
  });
});

describe('watermarks across partitions', () => {
  it('is the minimum over partitions of max event time minus allowed lateness', () => {
    const marks = new WatermarkTracker(5);
    expect(marks.watermark()).toBe(-Infinity);
    expect(marks.observe('p0', 100)).toBe(95);
    expect(marks.observe('p1', 40)).toBe(35);
    expect(marks.observe('p0', 90)).toBe(35);
    expect(marks.partitionWatermark('p0')).toBe(95);
    marks.remove('p1');
    expect(marks.watermark()).toBe(95);
  });

  it('does not treat out-of-order input across partitions as late while another partition lags', () => {
    const marks = new WatermarkTracker(0);
    const agg = aggregator(tumbling(10));
    // Partition 0 races ahead to t=50; partition 1 is still at t=3.
    agg.add('a', 50, 1, marks.observe('p0', 50));
    agg.add('a', 3, 1, marks.observe('p1', 3));
    // Partition 1 delivers t=7, older than partition 0's time but not older than the combined watermark.
    const outcome = agg.add('a', 7, 1, marks.observe('p1', 7));
    expect(outcome.lateness).toBe('on-time');
    expect(outcome.updates[0]).toEqual({ key: 'a', window: { start: 0, end: 10 }, value: 2, final: false });
    // Once partition 1 passes 10, [0, 10) closes with both partitions' records.
    expect(agg.advance(marks.observe('p1', 12))).toEqual([{ key: 'a', window: { start: 0, end: 10 }, value: 2, final: true }]);
  });
});

describe('advance skips the scan below the next due watermark', () => {
  /** The same aggregator made to scan at every advance, as it did before it kept the next due watermark. */
  function scanning<A>(inner: WindowedAggregator<number, A>): WindowedAggregator<number, A> {
    const advance = inner.advance.bind(inner);
    inner.advance = (watermark: number) => {
      (inner as unknown as { nextDue: number }).nextDue = Number.NEGATIVE_INFINITY;
      return advance(watermark);
    };
    return inner;
  }

  it('returns what a full scan at every advance returns, for fixed and session windows, every late policy', () => {
    const specs: WindowSpec[] = [tumbling(10), hopping(30, 10), session(7)];
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    let skipped = 0;
    let scanned = 0;
    for (const window of specs) {
      for (const latePolicy of ['drop', 'dead-letter', 'update'] as const) {
        for (let run = 0; run < 12; run++) {
          // Some runs keep closed windows for a while, some not at all, one expires them before they close.
          const retentionMs = run === 0 ? -5 : run % 3 === 0 ? 0 : Math.floor(random() * 40);
          const options = { window, aggregation: values, graceMs: Math.floor(random() * 6), latePolicy, retentionMs };
          const fast = new WindowedAggregator<number, number[]>(options);
          const full = scanning(new WindowedAggregator<number, number[]>(options));
          let watermark = 0;
          for (let step = 0; step < 200; step++) {
            const key = `k${Math.floor(random() * 4)}`;
            const time = Math.max(0, watermark + Math.floor(random() * 30) - 12);
            // The watermark given with a record: the current one, -∞ (as the ingest stage adds), or one ahead of the last advance.
            const pick = random();
            const addWatermark = pick < 0.5 ? watermark : pick < 0.75 ? Number.NEGATIVE_INFINITY : watermark + Math.floor(random() * 20);
            expect(fast.add(key, time, step, addWatermark)).toEqual(full.add(key, time, step, addWatermark));
            if (random() < 0.6) watermark += Math.floor(random() * 8);
            else if (random() < 0.1) watermark -= Math.floor(random() * 8); // a watermark given out of order
            if (random() < 0.3) continue; // not every record is followed by an advance
            const advanceTo = random() < 0.02 ? Number.NaN : watermark;
            const due = (fast as unknown as { nextDue: number }).nextDue;
            if (advanceTo < due) skipped++;
            else scanned++;
            expect(fast.advance(advanceTo)).toEqual(full.advance(advanceTo));
            for (const each of ['k0', 'k1', 'k2', 'k3']) expect(fast.windowsOf(each)).toEqual(full.windowsOf(each));
          }
          // Then everything closes and expires.
          expect(fast.advance(Number.POSITIVE_INFINITY)).toEqual(full.advance(Number.POSITIVE_INFINITY));
          for (const each of ['k0', 'k1', 'k2', 'k3']) expect(fast.windowsOf(each)).toEqual(full.windowsOf(each));
        }
      }
    }
    // Both paths were compared, many times each.
    expect(skipped).toBeGreaterThan(1_000);
    expect(scanned).toBeGreaterThan(1_000);
  });

  it('keeps the order of finals across keys that a dropped late record named first', () => {
    const make = () => new WindowedAggregator<number, number>({ window: tumbling(10), aggregation: sum });
    const fast = make();
    const full = scanning(make());
    for (const each of [fast, full]) {
      each.advance(20);
      each.add('K', 5, 1, 20); // late, dropped: K gets no window
      each.add('J', 25, 1, 20);
      each.add('K', 25, 1, 20);
    }
    const keys = fast.advance(40).map((result) => result.key);
    expect(keys).toEqual(full.advance(40).map((result) => result.key));
    expect(keys).toEqual(['K', 'J']);
  });
});
