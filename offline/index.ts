export {
  ChdbEngine,
  quoteIdentifier,
  type ChdbEngineOptions,
  type SqlEngine,
  type QueryOptions,
  type UserQueryOptions,
  type UserQueryResult,
} from './chdb-engine.js';
export { serveSql, writerSocketPath, type SqlServer, type SqlServerOptions } from './sql-server.js';
export { offlineMetrics, type OfflineMetrics } from './metrics.js';
export { ClickHouseError, parseClickHouseError } from './errors.js';
export { EmbeddedOfflineStore, RemoteOfflineStore, openOfflineStore, quoteString, type OfflineStore } from './store.js';
export {
  ensureTables,
  insertNew,
  type InsertHooks,
  offlineTables,
  featureTable,
  predictionsTable,
  shadowPredictionsTable,
  tableName,
  type TableSpec,
  type Column,
} from './tables.js';
