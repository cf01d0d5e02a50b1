import { describe, expect, it } from 'vitest';
import { uniformRandom } from '../../common/random.js';
import { evaluate } from '../../models/metrics.js';
import { MemoryStore } from '../state.js';
import { addDecided, emptyAccumulator, mergeAccumulators, performanceMetrics, type AccumulatorShape } from './accumulator.js';
import { PerformanceMerger, type PerformanceRecord } from './merger.js';
import { OutcomeRouter, decodeOutcome, encodeOutcome, type Outcome } from './outcomes.js';
import { PerformancePartition, decodePerformancePartial, encodePerformancePartial, type PerformancePartial } from './partition.js';

const shape: AccumulatorShape = { scoreBins: 1_000, calibrationBins: 10 };
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('performance accumulators', () => {
  it('give the metrics models/metrics computes from the raw scores (AUC within its stated bound)', () => {
    const random = uniformRandom(5);
    const scores: number[] = [];
    const labels: number[] = [];
    const accumulator = emptyAccumulator(shape);
    for (let index = 0; index < 5_000; index++) {
      const positive = random() < 0.1;
      const score = Math.min(0.999, Math.max(0.001, positive ? 0.3 + 0.6 * random() : 0.5 * random() ** 2));
      scores.push(score);
      labels.push(positive ? 1 : 0);
      accumulator.predictions++;
      addDecided(accumulator, shape, { score, decision: score >= 0.5, positive });
    }
    const exact = evaluate(scores, labels, 0.5);
    const metrics = performanceMetrics(accumulator);
    expect(metrics.logLoss).toBeCloseTo(exact.log_loss, 9);
    expect(metrics.precision).toBeCloseTo(exact.precision, 12);
    expect(metrics.recall).toBeCloseTo(exact.recall, 12);
    expect(metrics.ece).toBeCloseTo(exact.ece, 9);
    expect(metrics.aucErrorBound).toBeGreaterThan(0);
    expect(Math.abs((metrics.auc ?? 0) - exact.auc)).toBeLessThanOrEqual(metrics.aucErrorBound ?? 0);
    expect(metrics.baseRate).toBeCloseTo(exact.positives / 5_000, 12);
    expect(metrics.labelCompleteness).toBe(1);
  });

  it('merge to the accumulator of everything, and have no AUC with one class', () => {
    const left = emptyAccumulator(shape);
    const right = emptyAccumulator(shape);
    const whole = emptyAccumulator(shape);
    [0.1, 0.7, 0.2].forEach((score, index) => {
      for (const target of [index < 2 ? left : right, whole]) {
        target.predictions++;
        addDecided(target, shape, { score, decision: score > 0.5, positive: score > 0.5 });
      }
    });
    expect(mergeAccumulators(left, right)).toEqual(whole);
    const negativesOnly = emptyAccumulator(shape);
    negativesOnly.predictions = 2;
    addDecided(negativesOnly, shape, { score: 0.2, decision: false, positive: false });
    expect(performanceMetrics(negativesOnly)).toMatchObject({ auc: null, recall: null, labelCompleteness: 0.5 });
  });
});

describe('the join of predictions and labels', () => {
  const models = new Map([['fraud', { labelWindowMs: HOUR, predictionPartitions: 2, labelPartitions: 2 }]]);
  const start = 500 * HOUR;

  interface Scenario {
    readonly predictions: { id: string; time: number; score: number; source: number }[];
    readonly labels: { id: string; time: number; source: number }[];
  }

  function scenario(seed: number): Scenario {
    const random = uniformRandom(seed);
    const predictions: Scenario['predictions'] = [];
    const labels: Scenario['labels'] = [];
    for (let index = 0; index < 600; index++) {
      const time = start + Math.floor((index / 600) * 4 * HOUR);
      const fraud = random() < 0.1;
      const id = `t${index}`;
      predictions.push({ id, time, score: fraud ? 0.5 + 0.5 * random() : 0.4 * random(), source: index % 2 });
      // Most frauds are charged back within the hour; some after it (negatives); labels come from either label partition.
      if (fraud) labels.push({ id, time: time + (random() < 0.8 ? 10 * MINUTE : 2 * HOUR), source: Math.floor(random() * 2) });
    }
    // Predictions and labels keep flowing for a while after the last window of interest (as time goes on).
    predictions.push(
      { id: 'later-0', time: start + 4 * HOUR + 10 * MINUTE, score: 0.1, source: 0 },
      { id: 'later-1', time: start + 4 * HOUR + 10 * MINUTE, score: 0.1, source: 1 },
    );
    labels.push({ id: 'none-0', time: start + 7 * HOUR, source: 0 }, { id: 'none-1', time: start + 7 * HOUR, source: 1 });
    // Labels are produced as they happen: in time order.
    labels.sort((left, right) => left.time - right.time);
    return { predictions, labels };
  }

  /** Routes the scenario (as the routers would) into 2 outcomes partitions; each stream's own order is kept. */
  async function routed(input: Scenario): Promise<Outcome[][]> {
    const streams: Outcome[][][] = [
      [[], []],
      [[], []],
    ];
    const route = async (stream: 'prediction' | 'label', items: readonly (Outcome & { id: string; source: number })[]): Promise<void> => {
      for (const source of [0, 1]) {
        const router = new OutcomeRouter({ stream, source, outcomePartitions: 2, markEveryMs: MINUTE }, new MemoryStore<number>());
        for (const outcome of items.filter((item) => item.source === source))
          for (const entry of await router.route('fraud', outcome)) {
            const partition = entry.partition ?? Number(entry.key.replace(/\D/g, '') || '0') % 2;
            streams[partition]?.[stream === 'prediction' ? 0 : 1]?.push(decodeOutcome(encodeOutcome(entry.outcome)));
          }
      }
    };
    await route(
      'prediction',
      input.predictions.map((entry) => ({ type: 'prediction', model: 'fraud', version: 1, decision: entry.score >= 0.5, ...entry })),
    );
    await route(
      'label',
      input.labels.map((entry) => ({ type: 'label', model: 'fraud', ...entry })),
    );
    return streams.map(([predictions = [], labels = []]) => [...predictions, ...labels]);
  }

  /** Joins and merges, the two outcome partitions and the predictions/labels in each interleaved at random. */
  async function run(streams: Outcome[][], seed: number, interleave: boolean): Promise<PerformanceRecord[]> {
    const random = uniformRandom(seed);
    const merger = new PerformanceMerger(
      { shape, labelWindowMs: () => HOUR, training: () => Promise.resolve({ metrics: { auc: 0.9 }, threshold: 0.5 }) },
      new MemoryStore(),
    );
    const partitions = [0, 1].map(
      (partition) =>
        new PerformancePartition({ partition, partitions: 2, windowMs: HOUR, graceMs: 5 * MINUTE, shape, models }, new MemoryStore()),
    );
    // Per partition, the predictions queue and the labels queue (as two routers' outputs would interleave).
    const queues = streams.map((stream) => [
      stream.filter((entry) => entry.type !== 'label' && !(entry.type === 'mark' && entry.stream === 'label')),
      stream.filter((entry) => entry.type === 'label' || (entry.type === 'mark' && entry.stream === 'label')),
    ]);
    const partials: PerformancePartial[] = [];
    const records: PerformanceRecord[] = [];
    while (queues.some((queue) => queue.some((inner) => inner.length > 0))) {
      const candidates = queues
        .flatMap((queue, partition) => queue.map((inner, kind) => ({ inner, partition, kind })))
        .filter(({ inner }) => inner.length > 0);
      const pick = interleave ? candidates[Math.floor(random() * candidates.length)] : candidates[0];
      const outcome = pick?.inner.shift();
      if (!pick || !outcome) break;
      for (const partial of await (partitions[pick.partition] as PerformancePartition).add(outcome))
        partials.push(decodePerformancePartial(encodePerformancePartial(partial)));
      while (partials.length > 0 && (interleave ? random() < 0.5 : true))
        records.push(...(await merger.add(partials.shift() as PerformancePartial)));
    }
    for (const partial of partials) records.push(...(await merger.add(partial)));
    return records;
  }

  it('decides every prediction: positive with a label within the window, negative without; final records equal in any interleaving', async () => {
    const input = scenario(7);
    const streams = await routed(input);
    const first = await run(streams, 1, true);
    const finals = (records: PerformanceRecord[]): string[] =>
      records
        .filter((record) => record.stage === 'FINAL')
        .map((record) => JSON.stringify({ ...record, late_labels: 0, late_predictions: 0 }))
        .sort();
    for (const seed of [2, 3]) expect(finals(await run(streams, seed, true))).toEqual(finals(first));
    expect(finals(await run(streams, 4, false))).toEqual(finals(first));
    const final = first.filter((record) => record.stage === 'FINAL').sort((left, right) => left.window_start - right.window_start);
    expect(final.map((record) => (record.window_start - start) / HOUR)).toEqual([0, 1, 2, 3]);
    expect(final.reduce((sum, record) => sum + record.predictions, 0)).toBe(600);
    expect(final.every((record) => record.label_completeness === 1)).toBe(true);
    const positives = input.labels.filter(
      (label) => !label.id.startsWith('none') && label.time - (input.predictions.find((p) => p.id === label.id)?.time ?? 0) <= HOUR,
    ).length;
    expect(final.reduce((sum, record) => sum + record.positives, 0)).toBe(positives);
    expect(final.every((record) => record.training_auc === 0.9 && record.threshold === 0.5)).toBe(true);
    // Every window is PROVISIONAL first: with the predictions in before any label, nothing is decided yet.
    const inOrder = await run(streams, 4, false);
    const provisional = inOrder.filter((record) => record.stage === 'PROVISIONAL' && record.window_start < start + 4 * HOUR);
    expect(provisional.map((record) => record.label_completeness)).toEqual([0, 0, 0, 0]);
    expect(provisional.map((record) => record.predictions)).toEqual(final.map((record) => record.predictions));
    expect(first.filter((record) => record.stage === 'PROVISIONAL' && record.window_start < start + 4 * HOUR).length).toBe(4);
  });

  it('counts a label that arrives after its prediction was decided as late, never joined', async () => {
    const input = scenario(8);
    const streams = await routed(input);
    // A straggler label for t0 arrives (in partition 0's label stream) after the label clock has moved 3 hours on.
    const late: Outcome = { type: 'label', model: 'fraud', id: 't0', time: start + 5 * MINUTE, source: 0 };
    const labels = streams[0] ?? [];
    const at = labels.findIndex((entry) => entry.type === 'label' && entry.time > start + 3 * HOUR);
    labels.splice(at, 0, late);
    const records = await run(streams, 5, false);
    const final = records.filter((record) => record.stage === 'FINAL');
    expect(final.reduce((sum, record) => sum + record.late_labels, 0)).toBeGreaterThanOrEqual(1);
    const baseline = (await run(await routed(input), 5, false)).filter((record) => record.stage === 'FINAL');
    expect(final.reduce((sum, record) => sum + record.positives, 0)).toBe(baseline.reduce((sum, record) => sum + record.positives, 0));
  });
});
