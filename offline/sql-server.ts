import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Logger } from 'pino';
import { listen, type ListeningServer, readBody } from '../common/http.js';
import { ClickHouseError } from './errors.js';
import type { SqlEngine } from './chdb-engine.js';

export interface SqlServerOptions {
  readonly host: string;
  readonly port: number;
  /** Users may only read (SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN, WITH) unless this is false. */
  readonly readonly: boolean;
  /**
   * Requests authenticated with this password (HTTP Basic, `X-ClickHouse-Key` or `password=`, any
   * user) may write even when the endpoint is read-only: sluice's own jobs, which find it in the
   * data directory's stack.json.
   */
  readonly adminPassword?: string;
  readonly maxBodyBytes?: number;
  readonly logger: Logger;
}

export type SqlServer = ListeningServer;

const READ_STATEMENT = /^\s*(?:\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b/i;
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
 * ClickHouse's HTTP interface over an SqlEngine, so curl, `@clickhouse/client` and Grafana's
 * ClickHouse data source work against the embedded store: the query in the `query` parameter
 * and/or the body (a `query` parameter plus a body is a statement followed by its data, as for
 * `INSERT ... FORMAT JSONEachRow`), `default_format`, `database`, `query_id`, FORMAT clauses,
 * `/ping`, and exceptions as ClickHouse returns them (its text, its code in
 * `X-ClickHouse-Exception-Code`, a 4xx/5xx status). Other URL parameters are ClickHouse settings
 * and are ignored. Loopback and read-only by default.
 */
export async function serveSql(engine: SqlEngine, options: SqlServerOptions): Promise<SqlServer> {
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const server = http.createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      options.logger.error({ err: error }, 'SQL endpoint failed unexpectedly');
      if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=UTF-8' });
      response.end('Code: 1000. DB::Exception: internal error of the sluice SQL endpoint\n');
    });
  });

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
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
        new ClickHouseError(
          1000,
          `Code: 1000. DB::Exception: there is no handler for ${url.pathname}; send queries to / (UNKNOWN_HANDLER)`,
        ),
        404,
      );
      return;
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
    if (options.readonly && !READ_STATEMENT.test(sql) && !isAdmin(request, url, options.adminPassword)) {
      fail(
        response,
        new ClickHouseError(
          164,
          'Code: 164. DB::Exception: sluice: the SQL endpoint is read-only; only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN run here. (READONLY)',
        ),
      );
      return;
    }
    const format = url.searchParams.get('default_format') ?? 'TabSeparated';
    const database = url.searchParams.get('database') ?? undefined;
    const params: Record<string, string> = {};
    for (const [name, value] of url.searchParams) if (name.startsWith('param_')) params[name.slice('param_'.length)] = value;
    try {
      const result = await engine.query(sql, { format, params, ...(database ? { database } : {}) });
      const named = /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(parameter === null ? sql : parameter)?.[1] ?? format;
      response.writeHead(200, {
        'Content-Type': CONTENT_TYPES[named] ?? 'text/plain; charset=UTF-8',
        'X-ClickHouse-Format': named,
        'X-ClickHouse-Summary': JSON.stringify({ read_rows: '0', read_bytes: '0', written_rows: '0', written_bytes: '0' }),
        'Content-Length': result.length,
      });
      response.end(result);
    } catch (error) {
      if (error instanceof ClickHouseError) {
        options.logger.debug({ err: error, queryId }, 'query failed');
        fail(response, error);
        return;
      }
      throw error;
    }
  }

  return listen(server, options.host, options.port);
}

function isAdmin(request: http.IncomingMessage, url: URL, password: string | undefined): boolean {
  if (password === undefined) return false;
  const basic = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  const given =
    basic !== undefined
      ? Buffer.from(basic, 'base64').toString('utf8').split(':').slice(1).join(':')
      : ((request.headers['x-clickhouse-key'] as string | undefined) ?? url.searchParams.get('password') ?? undefined);
  return given === password;
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
