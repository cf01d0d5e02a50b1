export { ChdbEngine, quoteIdentifier, type SqlEngine, type QueryOptions } from './chdb-engine.js';
export { serveSql, type SqlServer, type SqlServerOptions } from './sql-server.js';
export { ClickHouseError, parseClickHouseError } from './errors.js';
