export { createMetricsRegistry, stageMetrics, type MetricsRegistry, type StageMetrics } from './metrics.js';
export { serveOps, type HealthSource, type OpsServer } from './server.js';
