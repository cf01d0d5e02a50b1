import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { unixSocketAgent } from '../common/http.js';
import { ChdbEngine } from './chdb-engine.js';
import { ClickHouseError } from './errors.js';

/**
 * The offline store as the sink, jobs and training sets use it: the same SQL on embedded chDB
 * (default, in this process) and on a ClickHouse server (`CLICKHOUSE_URL`, through
 * `@clickhouse/client` — or the embedded store of another sluice process over its HTTP endpoint).
 */
export interface OfflineStore {
  readonly description: string;
  /** A statement without a result (DDL, INSERT ... SELECT). */
  command(sql: string): Promise<void>;
  /** Rows of a SELECT as objects (JSONEachRow). */
  query<T>(sql: string): Promise<T[]>;
  /** Inserts rows (objects keyed by column). */
  insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  close(): Promise<void>;
}

/** chDB in this process, on its data directory (one per process). */
export class EmbeddedOfflineStore implements OfflineStore {
  readonly description: string;

  constructor(readonly engine: ChdbEngine) {
    this.description = `embedded chDB at ${engine.dataDir}`;
  }

  async command(sql: string): Promise<void> {
    await this.engine.query(sql, { format: 'TabSeparated' });
  }

  async query<T>(sql: string): Promise<T[]> {
    return parseEachRow<T>(await this.engine.query(sql, { format: 'JSONEachRow' }));
  }

  async insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    const body = rows.map((row) => JSON.stringify(row)).join('\n');
    await this.engine.query(`INSERT INTO ${table} FORMAT JSONEachRow\n${body}`, { format: 'TabSeparated' });
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/**
 * A ClickHouse server over HTTP, or the embedded store of another sluice process through its
 * writer socket (`{ socketPath }`: the URL is then only a name).
 */
export class RemoteOfflineStore implements OfflineStore {
  readonly description: string;
  private readonly client: ClickHouseClient;

  constructor(url: string, options: { readonly username?: string; readonly password?: string; readonly socketPath?: string } = {}) {
    const parsed = new URL(url);
    const database = parsed.pathname.replace(/^\//, '') || 'default';
    const username = options.username ?? (decodeURIComponent(parsed.username) || 'default');
    const password = options.password ?? decodeURIComponent(parsed.password);
    parsed.username = '';
    parsed.password = '';
    parsed.pathname = '/';
    this.description = options.socketPath ? `sluice's embedded ClickHouse through ${options.socketPath}` : `ClickHouse at ${parsed.origin}`;
    // Long queries (training sets) keep the connection alive with progress headers.
    this.client = createClient({
      url: parsed.origin,
      username,
      password,
      database,
      request_timeout: 300_000,
      clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '10000' },
      ...(options.socketPath ? { http_agent: unixSocketAgent(options.socketPath), set_basic_auth_header: false } : {}),
    });
  }

  async command(sql: string): Promise<void> {
    await this.wrap(() => this.client.command({ query: sql }));
  }

  async query<T>(sql: string): Promise<T[]> {
    return this.wrap(async () => (await this.client.query({ query: sql, format: 'JSONEachRow' })).json<T>());
  }

  async insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    await this.wrap(() => this.client.insert({ table, values: [...rows], format: 'JSONEachRow' }));
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private async wrap<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const code = Number((error as { code?: string }).code);
      throw new ClickHouseError(Number.isFinite(code) ? code : 1000, error instanceof Error ? error.message : String(error), {
        cause: error,
      });
    }
  }
}

/** Opens the configured store: CLICKHOUSE_URL when set, else embedded chDB on the data directory. */
export function openOfflineStore(clickhouse: { readonly url: string | undefined }, embeddedDir: string): OfflineStore {
  return clickhouse.url ? new RemoteOfflineStore(clickhouse.url) : new EmbeddedOfflineStore(new ChdbEngine(embeddedDir));
}

function parseEachRow<T>(bytes: Buffer): T[] {
  const rows: T[] = [];
  for (const line of bytes.toString('utf8').split('\n')) if (line !== '') rows.push(JSON.parse(line) as T);
  return rows;
}

/** A ClickHouse string literal. */
export function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}
