export { createMetricsRegistry, stageMetrics, inferenceMetrics, type MetricsRegistry, type StageMetrics, type InferenceMetrics } from './metrics.js';
export { serveOps, type HealthSource, type OpsServer, type OpsRoute } from './server.js';
