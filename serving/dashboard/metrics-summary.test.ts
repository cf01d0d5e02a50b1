import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { stageMetrics } from '../../streams/runtime/index.js';
import { inferenceMetrics } from '../../streams/inference/metrics.js';
import { summarizeMetrics } from './metrics-summary.js';

describe('summarizeMetrics', () => {
  it('has no stages and no counts for an empty registry', async () => {
    const summary = summarizeMetrics(await createMetricsRegistry(false).getMetricsAsJSON());
    expect(summary.stages).toEqual([]);
    expect(summary.predictions).toEqual([]);
    expect(summary.topicsOut).toEqual({});
  });

  it('sums partitions and topics per stage, and keeps the labels the page shows', async () => {
    const registry = createMetricsRegistry(false);
    const metrics = stageMetrics(registry);
    metrics.recordsIn.inc({ stage: 'pipeline', topic: 'raw.a' }, 5);
    metrics.recordsIn.inc({ stage: 'pipeline', topic: 'raw.b' }, 7);
    metrics.recordsOut.inc({ stage: 'pipeline', topic: 'events.a' }, 4);
    metrics.recordsOut.inc({ stage: 'sink', topic: 'dlq' }, 1);
    metrics.consumerLag.set({ stage: 'pipeline', topic: 'raw.a', partition: '0' }, 3);
    metrics.consumerLag.set({ stage: 'pipeline', topic: 'raw.a', partition: '1' }, 2);
    metrics.deadLetters.inc({ stage: 'pipeline', topic: 'raw.a', reason: 'bad' }, 2);
    const inference = inferenceMetrics(registry);
    inference.predictions.inc({ model: 'm', version: '1', outcome: 'model' }, 9);
    inference.predictions.inc({ model: 'm', version: '2', outcome: 'model' }, 11);

    const summary = summarizeMetrics(await registry.getMetricsAsJSON());
    expect(summary.stages.find((stage) => stage.stage === 'pipeline')).toMatchObject({ recordsIn: 12, recordsOut: 4, lag: 5 });
    expect(summary.stages.find((stage) => stage.stage === 'sink')).toMatchObject({ recordsIn: 0, recordsOut: 1, lag: 0 });
    expect(summary.topicsIn).toEqual({ 'raw.a': 5, 'raw.b': 7 });
    expect(summary.predictions.map((entry) => [entry.labels.version, entry.count])).toEqual([
      ['2', 11],
      ['1', 9],
    ]);
    expect(summary.deadLetters).toEqual([{ labels: { stage: 'pipeline', topic: 'raw.a', reason: 'bad' }, count: 2 }]);
  });
});
