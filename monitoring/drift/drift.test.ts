import { describe, expect, it } from 'vitest';
import { uniformRandom } from '../../common/random.js';
import { buildReference, type ModelReference } from '../reference.js';
import { MemoryStore } from '../state.js';
import { evaluateDrift, type DriftSettings } from './evaluate.js';
import { DriftMerger, type MergerState } from './merger.js';
import { decodeDriftPartial, DriftPartition, encodeDriftPartial, type DriftPartial, type PartitionProgress } from './partition.js';
import type { DriftRecord } from './records.js';
import { DriftSummary, layoutOf, type PredictionInput } from './summary.js';

const settings: DriftSettings = { minSample: 100, alpha: 0.05, correction: 'benjamini-hochberg', psiThreshold: 0.2, driftShare: 0.5 };
const HOUR = 3_600_000;

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(Number.EPSILON, random()))) * Math.cos(2 * Math.PI * random());
}

/** A reference over amount (log-normal), count (small integers), channel (3 categories) and the score. */
function reference(seed = 1, rows = 3_000): ModelReference {
  const random = uniformRandom(seed);
  const amount: number[] = [];
  const count: number[] = [];
  const channel: string[] = [];
  const scores: number[] = [];
  for (let index = 0; index < rows; index++) {
    amount.push(Math.exp(4 + 0.6 * gaussian(random)));
    count.push(Math.floor(random() * 5));
    channel.push(['ONLINE', 'IN_STORE', 'ATM'][Math.floor(random() * 3)] as string);
    scores.push(random() * 0.2);
  }
  return buildReference({
    numeric: [
      { name: 'amount', values: amount },
      { name: 'count', values: count },
    ],
    categorical: [{ name: 'channel', values: channel }],
    scores,
  });
}

function prediction(random: () => number, time: number, drift = 1, channels = ['ONLINE', 'IN_STORE', 'ATM']): PredictionInput {
  return {
    features: { amount: Math.exp(4 + 0.6 * gaussian(random)) * drift, count: Math.floor(random() * 5) },
    categories: { channel: channels[Math.floor(random() * channels.length)] ?? null },
    score: random() * 0.2,
    fallback: false,
    eventTime: time,
  };
}

function summarize(ref: ModelReference, predictions: readonly PredictionInput[]): DriftSummary {
  const layout = layoutOf(ref, 200);
  const summary = DriftSummary.empty(layout, 7);
  for (const entry of predictions) summary.add(entry, layout);
  return summary;
}

describe('drift summaries', () => {
  const ref = reference();
  const layout = layoutOf(ref, 200);

  it('count NaN and ±Infinity as invalid and null as missing, never in a bin or the sketch', () => {
    const summary = DriftSummary.empty(layout, 1);
    for (const amount of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, 50])
      summary.add({ features: { amount, count: 1 }, categories: { channel: null }, score: 0.1, fallback: false, eventTime: 0 }, layout);
    const [amount, , channel] = summary.parts;
    expect(amount?.invalid).toBe(3);
    expect(amount?.missing).toBe(1);
    expect(amount?.counts.reduce((sum, count) => sum + count, 0)).toBe(1);
    expect(amount?.kind === 'numeric' && amount.sketch.count).toBe(1);
    expect(channel?.missing).toBe(5);
    expect(summary.predictions).toBe(5);
  });

  it('count categories the reference never had as "other"', () => {
    const summary = DriftSummary.empty(layout, 1);
    summary.add({ features: {}, categories: { channel: 'TELEPATHY' }, score: 0, fallback: false, eventTime: 0 }, layout);
    summary.add({ features: {}, categories: { channel: 'ATM' }, score: 0, fallback: true, eventTime: 0 }, layout);
    const channel = summary.parts[2];
    expect(channel?.kind === 'categorical' && channel.other).toBe(1);
    expect(channel?.counts.reduce((sum, count) => sum + count, 0)).toBe(1);
    expect(summary.fallbacks).toBe(1);
  });

  it('round-trip through bytes, and merge to what one summary of everything holds (counts exactly)', () => {
    const random = uniformRandom(3);
    const all = Array.from({ length: 5_000 }, (_, index) => prediction(random, index));
    const whole = summarize(ref, all);
    const left = summarize(ref, all.slice(0, 2_000));
    const right = summarize(ref, all.slice(2_000));
    const merged = DriftSummary.fromBuffer(left.toBuffer()).merge(DriftSummary.fromBuffer(right.toBuffer()));
    expect(merged.predictions).toBe(5_000);
    merged.parts.forEach((part, index) => expect(part.counts).toEqual(whole.parts[index]?.counts));
    const restored = DriftSummary.fromBuffer(whole.toBuffer());
    expect(restored.toBuffer().equals(whole.toBuffer())).toBe(true);
    expect(() => DriftSummary.fromBuffer(whole.toBuffer().subarray(0, 100))).toThrow(RangeError);
  });

  it('stay bounded in size however much traffic a window sees', () => {
    const random = uniformRandom(4);
    const sizes = [1_000, 10_000, 100_000].map((count) => {
      const summary = DriftSummary.empty(layout, 1);
      for (let index = 0; index < count; index++) summary.add(prediction(random, index), layout);
      return summary.toBuffer().length;
    });
    expect(sizes[2]).toBeLessThan(20_000);
    expect((sizes[2] ?? 0) - (sizes[1] ?? 0)).toBeLessThan(2_000);
  });
});

describe('drift verdicts', () => {
  const ref = reference();

  it('find no drift in a window from the reference distribution, and drift where amounts grew and channels changed', () => {
    const random = uniformRandom(11);
    const stable = evaluateDrift(
      ref,
      summarize(
        ref,
        Array.from({ length: 600 }, (_, index) => prediction(random, index)),
      ),
      settings,
    );
    expect(stable.features.map((feature) => feature.verdict)).toEqual(['NO_DRIFT', 'NO_DRIFT', 'NO_DRIFT']);
    expect(stable.dataset).toMatchObject({ verdict: 'NO_DRIFT', share: 0, tested: 3 });
    const drifted = evaluateDrift(
      ref,
      summarize(
        ref,
        Array.from({ length: 600 }, (_, index) => prediction(random, index, 1.8, ['ONLINE', 'ONLINE', 'CRYPTO'])),
      ),
      settings,
    );
    const byName = new Map(drifted.features.map((feature) => [feature.feature, feature]));
    expect(byName.get('amount')?.verdict).toBe('DRIFT');
    expect(byName.get('amount')?.ks?.statistic).toBeGreaterThan(0.3);
    expect(byName.get('amount')?.ks?.errorBound).toBeGreaterThan(0);
    expect(byName.get('count')?.verdict).toBe('NO_DRIFT');
    expect(byName.get('channel')).toMatchObject({ verdict: 'DRIFT', test: 'CHI_SQUARE', unseen: expect.any(Number) as number });
    expect(byName.get('channel')?.unseen).toBeGreaterThan(100);
    expect(byName.get('channel')?.chiSquare?.dof).toBe(3);
    expect(drifted.dataset).toMatchObject({ verdict: 'DRIFT', drifted: 2, tested: 3 });
    expect(drifted.dataset.share).toBeCloseTo(2 / 3, 12);
  });

  it('give no verdict below the minimum sample, for an empty window, or for an input that is always missing', () => {
    const random = uniformRandom(12);
    const small = evaluateDrift(
      ref,
      summarize(
        ref,
        Array.from({ length: 50 }, (_, index) => prediction(random, index, 3)),
      ),
      settings,
    );
    expect(small.features.every((feature) => feature.verdict === 'INSUFFICIENT')).toBe(true);
    expect(small.features[0]?.reason).toMatch(/below the minimum sample: 50 live/);
    expect(small.dataset).toMatchObject({ verdict: 'INSUFFICIENT', share: null });
    const empty = evaluateDrift(ref, summarize(ref, []), settings);
    expect(empty.features[0]?.reason).toMatch(/^empty/);
    const missing = Array.from({ length: 300 }, (_, index) => ({ ...prediction(random, index), features: { amount: null, count: 1 } }));
    const result = evaluateDrift(ref, summarize(ref, missing), settings);
    expect(result.features[0]).toMatchObject({ verdict: 'INSUFFICIENT', missing: 300, sampleSize: 0 });
    // The other inputs are still tested: the family shrinks to them.
    expect(result.features[2]?.testsInFamily).toBe(2);
  });

  it('handle a one-valued input: the reference and the window both constant', () => {
    const constant = buildReference({ numeric: [{ name: 'flag', values: new Array<number>(500).fill(1) }], categorical: [] });
    const layout = layoutOf(constant, 200);
    const same = DriftSummary.empty(layout, 1);
    const moved = DriftSummary.empty(layout, 1);
    for (let index = 0; index < 200; index++) {
      same.add({ features: { flag: 1 }, categories: {}, score: 0, fallback: false, eventTime: 0 }, layout);
      moved.add({ features: { flag: 2 }, categories: {}, score: 0, fallback: false, eventTime: 0 }, layout);
    }
    const unchanged = evaluateDrift(constant, same, settings).features[0];
    expect(unchanged).toMatchObject({ verdict: 'NO_DRIFT', statistic: 0, psi: 0 });
    const changed = evaluateDrift(constant, moved, settings).features[0];
    expect(changed).toMatchObject({ verdict: 'DRIFT', statistic: 1 });
  });

  it('need the effect size beside the p-value: a tiny shift in a huge window is significant but not drift', () => {
    const random = uniformRandom(13);
    const many = Array.from({ length: 60_000 }, (_, index) => prediction(random, index, 1.04));
    const amount = evaluateDrift(ref, summarize(ref, many), settings).features[0];
    expect(amount?.pValueAdjusted).toBeLessThan(0.05);
    expect(amount?.psi).toBeLessThan(0.2);
    expect(amount?.verdict).toBe('NO_DRIFT');
  });

  it('correct the p-values for the inputs tested together (Bonferroni multiplies by m)', () => {
    const random = uniformRandom(14);
    const window = summarize(
      ref,
      Array.from({ length: 400 }, (_, index) => prediction(random, index, 1.3)),
    );
    const raw = evaluateDrift(ref, window, { ...settings, correction: 'none' }).features;
    const bonferroni = evaluateDrift(ref, window, { ...settings, correction: 'bonferroni' }).features;
    raw.forEach((feature, index) => {
      expect(bonferroni[index]?.pValueAdjusted).toBeCloseTo(Math.min(1, (feature.pValue ?? 0) * 3), 15);
      expect(bonferroni[index]?.testsInFamily).toBe(3);
    });
  });

  it('report NO_REFERENCE with the counts when the version stores no reference', () => {
    const layout = layoutOf(undefined, 200);
    const summary = DriftSummary.empty(layout, 1);
    summary.add({ features: { amount: 1 }, categories: {}, score: 0, fallback: true, eventTime: 0 }, layout);
    expect(evaluateDrift(undefined, summary, settings).dataset).toMatchObject({ verdict: 'NO_REFERENCE', predictions: 1, fallbacks: 1 });
  });
});

describe('partitions and the merger', () => {
  const ref = reference();
  const layout = layoutOf(ref, 200);
  const start = 100 * HOUR;
  const TICK = 10 * 60_000;
  const EVENTS = 800;
  const lastN = { events: EVENTS, blocks: 4, tickMs: TICK };

  type Traffic = { partition: number; input: PredictionInput & { version: number } }[];

  /** Predictions of one model over 4 partitions, 6 hours, drift from hour 3; `weights` skews the partitions' traffic. */
  function traffic(seed: number, weights: readonly number[] = [1, 1, 1, 1]): Traffic {
    const random = uniformRandom(seed);
    const total = weights.reduce((sum, weight) => sum + weight, 0);
    const partitionOf = (draw: number): number => {
      let left = draw * total;
      for (const [partition, weight] of weights.entries()) if ((left -= weight) < 0) return partition;
      return weights.length - 1;
    };
    return Array.from({ length: 4_000 }, (_, index) => {
      const time = start + Math.floor((index / 4_000) * 6 * HOUR) - Math.floor(random() * 120_000);
      return { partition: partitionOf(random()), input: { ...prediction(random, time, time >= start + 3 * HOUR ? 2 : 1), version: 1 } };
    });
  }

  async function partialsOf(records: Traffic, blocks: { size: number; tickMs: number } | undefined): Promise<DriftPartial[][]> {
    const result: DriftPartial[][] = [];
    for (let partition = 0; partition < 4; partition++) {
      const processor = new DriftPartition(
        { model: 'fraud', partition, partitions: 4, windowMs: HOUR, graceMs: 5 * 60_000, blocks, layout: () => Promise.resolve(layout) },
        new MemoryStore<DriftSummary>(),
        new MemoryStore<PartitionProgress>(),
      );
      const out: DriftPartial[] = [];
      for (const record of records.filter((entry) => entry.partition === partition)) out.push(...(await processor.add(record.input)));
      // Every partition moves on past the last window (as later traffic would).
      out.push(...(await processor.add({ ...prediction(uniformRandom(partition), start + 8 * HOUR), version: 1 })));
      result.push(out);
    }
    return result;
  }

  async function merge(streams: DriftPartial[][], interleave: () => number): Promise<DriftRecord[]> {
    const merger = new DriftMerger(
      { settings, lastN, reference: () => Promise.resolve(ref), layout: () => Promise.resolve(layout) },
      new MemoryStore<DriftSummary>(),
      new MemoryStore(),
    );
    const queues = streams.map((stream) => [...stream]);
    const records: DriftRecord[] = [];
    while (queues.some((queue) => queue.length > 0)) {
      const candidates = queues.filter((queue) => queue.length > 0);
      const queue = candidates[Math.floor(interleave() * candidates.length)] ?? [];
      const partial = queue.shift();
      // Through bytes, as the internal topic carries them.
      if (partial) records.push(...(await merger.add(decodeDriftPartial(encodeDriftPartial(partial)))));
    }
    return records;
  }

  const sorted = (records: DriftRecord[]): string[] => records.map((record) => JSON.stringify(record)).sort();

  /**
   * Each view against the predictions themselves: at least EVENTS and at most a quarter more; it
   * ends with the latest prediction of the ticks closed so far; it reaches back no further than
   * the tick before the one holding the 1.25·EVENTS-th latest prediction (the view is the latest
   * predictions of every partition, whatever their traffic).
   */
  function checkViews(records: Traffic, views: DriftRecord[]): void {
    const times = records.map((record) => record.input.eventTime).sort((left, right) => left - right);
    for (const view of views) {
      const tickEnd = ((view.last_n_round ?? 0) + 1) * TICK;
      const seen = times.filter((time) => time < tickEnd);
      expect(view.predictions).toBeGreaterThanOrEqual(EVENTS);
      expect(view.predictions).toBeLessThanOrEqual(EVENTS * 1.25);
      expect(view.window_end - 1).toBe(seen.at(-1));
      const reach = seen.at(-Math.ceil(EVENTS * 1.25)) ?? Number.NEGATIVE_INFINITY;
      expect(view.window_start).toBeGreaterThanOrEqual(Math.floor(reach / TICK) * TICK - TICK);
    }
  }

  it('evaluate each window once, after every partition is done with it, whatever the order partials arrive in', async () => {
    const records = traffic(21);
    const streams = await partialsOf(records, { size: 20, tickMs: TICK });
    const first = await merge(streams, uniformRandom(1));
    const second = await merge(streams, uniformRandom(99));
    // The same records (their order in the topic may differ: tumbling windows and last-N views complete independently).
    expect(second.length).toBe(first.length);
    expect(sorted(second).every((record, index) => record === sorted(first)[index])).toBe(true);
    const tumbling = first.filter((record) => record.window_kind === 'TUMBLING' && record.feature === '__dataset__');
    expect(tumbling.map((record) => (record.window_start - start) / HOUR)).toEqual([-1, 0, 1, 2, 3, 4, 5]);
    // Hour -1 holds only the jittered first events: too few for a verdict.
    expect(tumbling.map((record) => record.verdict)).toEqual(['INSUFFICIENT', ...new Array<string>(6).fill('NO_DRIFT')]);
    // Only the amounts moved (from hour 3): one input of three drifted, below the dataset share of 0.5.
    expect(tumbling.map((record) => record.drifted_features)).toEqual([0, 0, 0, 0, 1, 1, 1]);
    expect(tumbling.reduce((sum, record) => sum + record.predictions, 0)).toBe(4_000);
    const amount = first.find(
      (record) => record.window_kind === 'TUMBLING' && record.feature === 'amount' && record.window_start === start + 3 * HOUR,
    );
    expect(amount).toMatchObject({ verdict: 'DRIFT', test: 'KS' });
    // The last-N view: once EVENTS predictions are in, at a tick's close.
    const views = first.filter((record) => record.window_kind === 'LAST_N' && record.feature === '__dataset__');
    // Full, then again once EVENTS / 4 predictions are new, at a tick's close.
    const perTick = new Map<number, number>();
    for (const record of records) {
      const tick = Math.floor(record.input.eventTime / TICK);
      perTick.set(tick, (perTick.get(tick) ?? 0) + 1);
    }
    const filled: number[] = [];
    let seen = 0;
    let fresh = 0;
    for (const [tick, count] of [...perTick].sort(([left], [right]) => left - right)) {
      seen += count;
      fresh += count;
      if (seen >= EVENTS && fresh >= EVENTS / 4) {
        filled.push(tick);
        fresh = 0;
      }
    }
    expect(views.map((view) => view.last_n_round)).toEqual(filled);
    checkViews(records, views);
    expect(views.at(-1)?.drifted_features).toBe(1);
    expect(views[0]?.drifted_features).toBe(0);
  });

  it('keep the view on the latest predictions of every partition when their traffic differs', async () => {
    // Partition 0 gets 12 times the traffic of each other one: counting blocks alike in every
    // partition would leave its part of the view hours behind (and its blocks piling up).
    const records = traffic(23, [12, 1, 1, 1]);
    const streams = await partialsOf(records, { size: 20, tickMs: TICK });
    const first = await merge(streams, uniformRandom(5));
    const second = await merge(streams, uniformRandom(6));
    expect(sorted(second)).toEqual(sorted(first));
    const views = first.filter((record) => record.window_kind === 'LAST_N' && record.feature === '__dataset__');
    expect(views.length).toBeGreaterThan(10);
    checkViews(records, views);
  });

  it('bound the view’s buckets when quiet ticks make them many', async () => {
    // 4,000 predictions over 6 hours in 1-minute ticks: about 11 per tick, so EVENTS need some 70 ticks of blocks.
    const records = traffic(24);
    const meta = new MemoryStore<MergerState>();
    const bounded = new DriftMerger(
      { settings, lastN: { ...lastN, tickMs: 60_000 }, reference: () => Promise.resolve(ref), layout: () => Promise.resolve(layout) },
      new MemoryStore<DriftSummary>(),
      meta,
    );
    const streams = await partialsOf(records, { size: 20, tickMs: 60_000 });
    let most = 0;
    let views = 0;
    for (const stream of streams)
      for (const partial of stream) {
        views += (await bounded.add(partial)).filter(
          (record) => record.window_kind === 'LAST_N' && record.feature === '__dataset__',
        ).length;
        most = Math.max(most, meta.entries.get('m:fraud')?.views?.[0]?.buckets.length ?? 0);
      }
    expect(views).toBeGreaterThan(10);
    // At most 2 · blocks · partitions buckets.
    expect(most).toBe(32);
  });

  it('delete the view of a version without predictions for VIEW_IDLE_TICKS ticks', async () => {
    // Ticks of 10 s: version 1 for the first hour, version 2 after it; 1,440 ticks are 4 hours.
    const records = traffic(26).map((record) => ({
      ...record,
      input: { ...record.input, version: record.input.eventTime < start + HOUR ? 1 : 2 },
    }));
    const parts = new MemoryStore<DriftSummary>();
    const meta = new MemoryStore<MergerState>();
    const merger = new DriftMerger(
      {
        settings,
        lastN: { events: 200, blocks: 4, tickMs: 10_000 },
        reference: () => Promise.resolve(ref),
        layout: () => Promise.resolve(layout),
      },
      parts,
      meta,
    );
    const versionsSeen = new Set<number>();
    for (const stream of await partialsOf(records, { size: 20, tickMs: 10_000 }))
      for (const partial of stream)
        for (const record of await merger.add(partial)) if (record.window_kind === 'LAST_N') versionsSeen.add(record.model_version);
    expect([...versionsSeen].sort()).toEqual([1, 2]);
    expect(meta.entries.get('m:fraud')?.views?.map((view) => view.version)).toEqual([2]);
    expect([...parts.entries.keys()].filter((key) => key.startsWith('v:fraud:1:'))).toEqual([]);
    expect([...parts.entries.keys()].filter((key) => key.startsWith('v:fraud:2:')).length).toBeGreaterThan(0);
  });

  it('delete the state of the round-aligned view that versions before ticks kept', async () => {
    const summary = DriftSummary.empty(layout, 1);
    const progress = new MemoryStore<PartitionProgress>();
    const summaries = new MemoryStore<DriftSummary>();
    progress.put('progress', {
      maxTime: null,
      through: null,
      open: [],
      late: {},
      round: 3,
      blockCount: 7,
      blockVersions: [1],
    } as PartitionProgress);
    summaries.put('b:1', summary);
    const partition = new DriftPartition(
      {
        model: 'fraud',
        partition: 0,
        partitions: 1,
        windowMs: HOUR,
        graceMs: 0,
        blocks: { size: 20, tickMs: TICK },
        layout: () => Promise.resolve(layout),
      },
      summaries,
      progress,
    );
    await partition.add({ ...prediction(uniformRandom(1), start), version: 1 });
    expect(summaries.entries.has('b:1')).toBe(false);
    expect(Object.keys(progress.entries.get('progress') ?? {}).sort()).toEqual(['late', 'maxTime', 'open', 'through', 'ticks']);

    const parts = new MemoryStore<DriftSummary>();
    const meta = new MemoryStore<MergerState>();
    parts.put('b:fraud:4:0:1', summary);
    parts.put('r:fraud:2:1', summary);
    meta.put('m:fraud', {
      partitions: 1,
      through: [null],
      pending: [],
      late: [],
      collecting: [{ round: 4, from: [0], versions: [1] }],
      rounds: [{ round: 2, versions: [1] }],
    } as MergerState);
    const merger = new DriftMerger(
      { settings, lastN, reference: () => Promise.resolve(ref), layout: () => Promise.resolve(layout) },
      parts,
      meta,
    );
    await merger.add({ kind: 'progress', model: 'fraud', partition: 0, partitions: 1, through: start, late: {} });
    expect([...parts.entries.keys()]).toEqual([]);
    expect(Object.keys(meta.entries.get('m:fraud') ?? {}).sort()).toEqual(['late', 'partitions', 'pending', 'through']);
  });

  it('count predictions whose window had closed as late, in the next evaluated window, never in a summary', async () => {
    const records = traffic(22);
    // One straggler from hour 0 arrives in partition 0 after hour 2's events.
    const index = records.findIndex((record) => record.partition === 0 && record.input.eventTime > start + 2 * HOUR);
    records.splice(index, 0, { partition: 0, input: { ...prediction(uniformRandom(5), start + 10 * 60_000), version: 1 } });
    const out = await merge(await partialsOf(records, undefined), uniformRandom(3));
    const datasets = out.filter((record) => record.feature === '__dataset__');
    expect(datasets.reduce((sum, record) => sum + record.late_records, 0)).toBe(1);
    expect(datasets.reduce((sum, record) => sum + record.predictions, 0)).toBe(4_000);
  });

  it('count predictions whose tick had closed as late for the view, and keep them in their window', async () => {
    const records = traffic(25);
    // A straggler 30 minutes behind its partition: its tick has closed, its hour has not.
    const index = records.findIndex((record) => record.partition === 1 && record.input.eventTime > start + 2 * HOUR + 40 * 60_000);
    const time = start + 2 * HOUR + 5 * 60_000;
    records.splice(index, 0, { partition: 1, input: { ...prediction(uniformRandom(6), time), version: 1 } });
    const out = await merge(await partialsOf(records, { size: 20, tickMs: TICK }), uniformRandom(4));
    const datasets = (kind: string): DriftRecord[] =>
      out.filter((record) => record.feature === '__dataset__' && record.window_kind === kind);
    expect(datasets('TUMBLING').reduce((sum, record) => sum + record.late_records, 0)).toBe(0);
    expect(datasets('TUMBLING').reduce((sum, record) => sum + record.predictions, 0)).toBe(4_001);
    expect(datasets('LAST_N').reduce((sum, record) => sum + record.late_records, 0)).toBe(1);
  });
});
