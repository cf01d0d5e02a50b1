import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { assertBindable, AUTH_CHALLENGE, checkCredential, presentedCredential } from '../common/auth.js';
import { ConfigError } from '../common/errors.js';
import { listen, type ListeningServer, readBody } from '../common/http.js';
import type { MetricsRegistry } from '../common/metrics.js';
import { offlineMetrics } from './metrics.js';
import { ClickHouseError } from './errors.js';
import type { SqlEngine } from './chdb-engine.js';

export interface SqlServerOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Must be true: users read. (Users' writes were removed: sluice's own jobs write through the
   * writer socket, which only the data directory's owner can open.)
   */
  readonly readonly: boolean;
  /**
   * Tokens users authenticate with (HTTP Basic password with any user name, `Bearer`,
   * `X-ClickHouse-Key` or `?password=`). None: open, which only a loopback host allows.
   */
  readonly tokens?: readonly string[];
  /**
   * The Unix socket sluice's jobs in other processes write through (any statement the engine's
   * grants allow, on a connection of their own). Default: `writerSocketPath` of the engine's data
   * directory; false: none.
   */
  readonly writerSocket?: string | false;
  /** Ignored (kept for callers of the old option): nothing on the TCP endpoint writes for a password; jobs use the writer socket. */
  readonly adminPassword?: string;
  readonly maxBodyBytes?: number;
  /** Counts users' statements by outcome (sluice_sql_user_queries_total). */
  readonly metrics?: MetricsRegistry;
  readonly logger: Logger;
}

export interface SqlServer extends ListeningServer {
  /** The writer socket's path, when there is one. */
  readonly writerSocket: string | undefined;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  JSON: 'application/json; charset=UTF-8',
  JSONCompact: 'application/json; charset=UTF-8',
  JSONEachRow: 'application/x-ndjson; charset=UTF-8',
  JSONCompactEachRow: 'application/x-ndjson; charset=UTF-8',
  CSV: 'text/csv; charset=UTF-8; header=absent',
  CSVWithNames: 'text/csv; charset=UTF-8; header=present',
  TabSeparated: 'text/tab-separated-values; charset=UTF-8',
  TSV: 'text/tab-separated-values; charset=UTF-8',
};

/**
 * Where the writer socket of an embedded store's data directory (`<SLUICE_DATA_DIR>/clickhouse`)
 * is: `<dir>/sluice-run/sql-writer.sock`, or (when that path is too long for a Unix socket) a
 * folder of the system's temporary directory named after the data directory.
 */
export function writerSocketPath(dataDir: string): string {
  const socket = path.join(path.resolve(dataDir), 'sluice-run', 'sql-writer.sock');
  if (Buffer.byteLength(socket) <= 100) return socket;
  const id = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `sluice-${id}`, 'sql-writer.sock');
}

/**
 * ClickHouse's HTTP interface over an SqlEngine, so curl, `@clickhouse/client` and Grafana's
 * ClickHouse data source work against the embedded store: the query in the `query` parameter
 * and/or the body, `default_format`, `database`, `query_id`, `param_<name>` for `{name:Type}`
 * placeholders, FORMAT clauses, `/ping`, and exceptions as ClickHouse returns them (its text, its
 * code in `X-ClickHouse-Exception-Code`, a 4xx/5xx status). Other URL parameters are ClickHouse
 * settings, which users cannot change here: they are not applied. Users' statements go through
 * `SqlEngine.userQuery` (one read-only statement, ClickHouse's limits); sluice's own jobs use the
 * writer socket.
 */
export async function serveSql(engine: SqlEngine, options: SqlServerOptions): Promise<SqlServer> {
  if (!options.readonly)
    throw new ConfigError(
      "users' writes through the SQL endpoint are not supported (SLUICE_SQL_WRITABLE): the endpoint is read-only; sluice's jobs write through its writer socket",
    );
  const tokens = options.tokens ?? [];
  assertBindable('the SQL endpoint', options.host, tokens, 'SLUICE_SQL_HOST', 'SLUICE_SQL_AUTH_TOKEN');
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const { logger } = options;
  const counted = options.metrics ? offlineMetrics(options.metrics).userQueries : undefined;
  /** Refused: the endpoint's rules or ClickHouse's access control said no; failed: anything else (limits, errors). */
  const REFUSALS = new Set([62, 164, 202, 497, 516]);

  const handler =
    (kind: 'users' | 'writer') =>
    (request: http.IncomingMessage, response: http.ServerResponse): void => {
      void handle(kind, request, response).catch((error: unknown) => {
        logger.error({ err: error }, 'SQL endpoint failed unexpectedly');
        if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=UTF-8' });
        response.end('Code: 1000. DB::Exception: internal error of the sluice SQL endpoint\n');
      });
    };

  async function handle(kind: 'users' | 'writer', request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://sql');
    const queryId = url.searchParams.get('query_id') ?? randomUUID();
    response.setHeader('X-ClickHouse-Query-Id', queryId);
    if (url.pathname === '/ping' || (url.pathname === '/' && request.method === 'GET' && !url.searchParams.has('query'))) {
      request.resume();
      response.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
      response.end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') {
      request.resume();
      fail(
        response,
        new ClickHouseError(1000, 'Code: 1000. DB::Exception: there is no handler for this path; send queries to / (UNKNOWN_HANDLER)'),
        404,
      );
      return;
    }
    if (kind === 'users') {
      const presented =
        presentedCredential(request) ?? header(request, 'x-clickhouse-key') ?? url.searchParams.get('password') ?? undefined;
      const outcome = checkCredential(tokens, presented);
      if (outcome === 'missing' || outcome === 'invalid') {
        request.resume();
        response.setHeader('WWW-Authenticate', AUTH_CHALLENGE);
        fail(
          response,
          new ClickHouseError(
            516,
            `Code: 516. DB::Exception: ${outcome === 'missing' ? 'Authentication required: send the token as the password (HTTP Basic), as a Bearer token or in X-ClickHouse-Key' : 'Authentication failed: password is incorrect, or there is no user with such name'}. (AUTHENTICATION_FAILED)`,
          ),
          401,
        );
        return;
      }
    }
    const body = await readBody(request, maxBody);
    if (body === undefined) {
      fail(
        response,
        new ClickHouseError(1000, `Code: 1000. DB::Exception: the request body exceeds ${maxBody} bytes (TOO_LARGE_REQUEST)`),
        413,
      );
      return;
    }
    const parameter = url.searchParams.get('query');
    const sql = parameter === null ? body.toString('utf8') : body.length > 0 ? `${parameter}\n${body.toString('utf8')}` : parameter;
    if (sql.trim() === '') {
      fail(response, new ClickHouseError(62, 'Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)'));
      return;
    }
    const format = url.searchParams.get('default_format') ?? 'TabSeparated';
    const database = url.searchParams.get('database') ?? undefined;
    const params: Record<string, string> = {};
    for (const [name, value] of url.searchParams) if (name.startsWith('param_')) params[name.slice('param_'.length)] = value;
    // A client that goes away cancels its query.
    const gone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) gone.abort();
    });
    try {
      let result: { bytes: Buffer; format: string };
      if (kind === 'users') {
        result = await engine.userQuery(sql, { format, params, signal: gone.signal, ...(database ? { database } : {}) });
      } else {
        const bytes = await engine.query(sql, { format, params, lane: 'jobs', ...(database ? { database } : {}) });
        result = { bytes, format: /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(parameter ?? sql)?.[1] ?? format };
      }
      response.writeHead(200, {
        'Content-Type': CONTENT_TYPES[result.format] ?? 'text/plain; charset=UTF-8',
        'X-ClickHouse-Format': result.format,
        'X-ClickHouse-Summary': JSON.stringify({ read_rows: '0', read_bytes: '0', written_rows: '0', written_bytes: '0' }),
        'Content-Length': result.bytes.length,
      });
      response.end(result.bytes);
      if (kind === 'users') counted?.inc({ outcome: 'ok' });
    } catch (error) {
      if (error instanceof ClickHouseError) {
        if (kind === 'users') counted?.inc({ outcome: REFUSALS.has(error.clickhouseCode) ? 'refused' : 'failed' });
        logger.debug({ err: error, queryId, kind }, 'query failed');
        fail(response, error);
        return;
      }
      throw error;
    }
  }

  const tcp = await listen(http.createServer(handler('users')), options.host, options.port);
  const socketPath =
    options.writerSocket === false
      ? undefined
      : (options.writerSocket ?? (hasDataDir(engine) ? writerSocketPath(engine.dataDir) : undefined));
  let writer: ListeningServer | undefined;
  if (socketPath !== undefined) {
    try {
      writer = await listenOnSocket(http.createServer(handler('writer')), socketPath);
    } catch (error) {
      await tcp.close();
      throw error;
    }
  }
  return {
    url: tcp.url,
    writerSocket: socketPath,
    async close() {
      await tcp.close();
      await writer?.close();
    },
  };
}

/**
 * Listens on a Unix socket inside a folder only this user may enter (0700): the file system
 * decides who may write, and there is no credential anyone could read.
 */
async function listenOnSocket(server: http.Server, socketPath: string): Promise<ListeningServer> {
  const dir = path.dirname(socketPath);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const stat = await fs.stat(dir);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid())
    throw new ConfigError(`${dir} belongs to another user; the SQL writer socket needs a folder of its own`);
  await fs.rm(socketPath, { force: true });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  await fs.chmod(socketPath, 0o600);
  return {
    url: `unix:${socketPath}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => fs.rm(socketPath, { force: true })),
  };
}

function hasDataDir(engine: SqlEngine): engine is SqlEngine & { readonly dataDir: string } {
  return typeof (engine as { dataDir?: unknown }).dataDir === 'string';
}

function header(request: http.IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function fail(response: http.ServerResponse, error: ClickHouseError, status = error.httpStatus): void {
  const text = `${error.message.replace(/\n+$/, '')}\n`;
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=UTF-8',
    'X-ClickHouse-Exception-Code': String(error.clickhouseCode),
    'Content-Length': Buffer.byteLength(text),
  });
  response.end(text);
}
