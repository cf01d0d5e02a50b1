export { startMonitoring, monitoringTopics, type MonitoringRunOptions, type RunningMonitoring, type MonitoringPart } from './run.js';
export { ModelCatalog, type ModelCatalogApi, type CatalogOptions } from './catalog.js';
export {
  driftPipeline,
  driftStage,
  driftMergeStage,
  predictionInput,
  blockSizeOf,
  DRIFT_STAGE,
  DRIFT_MERGE_STAGE,
  type DriftStageOptions,
} from './drift.js';
export {
  performancePipeline,
  performanceRouteStage,
  performanceJoinStage,
  performanceMergeStage,
  PERFORMANCE_STAGE,
  PERFORMANCE_ROUTE_STAGE,
  PERFORMANCE_MERGE_STAGE,
  type PerformanceStageOptions,
} from './performance.js';
export { alertsStage, alertInputs, ALERTS_STAGE, type AlertsStageOptions } from './alerts.js';
export { webhookStage, postAlert, WEBHOOK_STAGE, type WebhookOptions } from './webhook.js';
export { actionsStage, ACTIONS_STAGE, type ActionOutcome, type RetrainExecutor, type ActionsOptions } from './actions.js';
export { startLagSampler, groupLag, type LagSamplerOptions } from './lag.js';
export { MonitoringError } from './errors.js';
