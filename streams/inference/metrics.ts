import client from 'prom-client';
import type { MetricsRegistry } from '../../common/metrics.js';

export interface InferenceMetrics {
  readonly predictions: client.Counter<'model' | 'version' | 'outcome'>;
  readonly shadowPredictions: client.Counter<'model' | 'version' | 'outcome'>;
  readonly fallbacks: client.Counter<'model' | 'reason'>;
  readonly latencySeconds: client.Histogram<'model'>;
  readonly batchSize: client.Histogram<'model'>;
}

const inferenceCache = new WeakMap<MetricsRegistry, InferenceMetrics>();

/** Metrics of inference stages (created once per registry). */
export function inferenceMetrics(registry: MetricsRegistry): InferenceMetrics {
  const existing = inferenceCache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: InferenceMetrics = {
    predictions: new client.Counter({
      name: 'sluice_predictions_total',
      help: 'Predictions made, per model, version and outcome (model or fallback).',
      labelNames: ['model', 'version', 'outcome'],
      registers,
    }),
    shadowPredictions: new client.Counter({
      name: 'sluice_shadow_predictions_total',
      help: 'Predictions of a shadow version (they decide nothing), per model, version and outcome (model or fallback).',
      labelNames: ['model', 'version', 'outcome'],
      registers,
    }),
    fallbacks: new client.Counter({
      name: 'sluice_prediction_fallbacks_total',
      help: 'Fallback predictions, per model and reason (missing_features, no_model, model_error).',
      labelNames: ['model', 'reason'],
      registers,
    }),
    latencySeconds: new client.Histogram({
      name: 'sluice_prediction_latency_seconds',
      help: 'From an event reaching inference to its score.',
      labelNames: ['model'],
      registers,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    batchSize: new client.Histogram({
      name: 'sluice_inference_batch_size',
      help: 'Rows per onnxruntime call (micro-batches).',
      labelNames: ['model'],
      registers,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
    }),
  };
  inferenceCache.set(registry, metrics);
  return metrics;
}
