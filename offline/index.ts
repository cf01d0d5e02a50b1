export { ChdbEngine, quoteIdentifier, type SqlEngine, type QueryOptions } from './chdb-engine.js';
export { serveSql, type SqlServer, type SqlServerOptions } from './sql-server.js';
export { ClickHouseError, parseClickHouseError } from './errors.js';
export { EmbeddedOfflineStore, RemoteOfflineStore, openOfflineStore, quoteString, type OfflineStore } from './store.js';
export {
  ensureTables,
  insertNew,
  offlineTables,
  featureTable,
  predictionsTable,
  tableName,
  type TableSpec,
  type Column,
} from './tables.js';
