import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DEFAULT_SQL_LIMITS, type SqlLimits } from '../common/config.js';
import { INTERNAL_PRIORITY, userConnectionArgs, writeAccessConfigSync } from './access.js';
import { ClickHouseError, parseClickHouseError } from './errors.js';
import { inspectUserStatement, type StatementAnalysis } from './user-statement.js';

/** What the SQL endpoint and the sink need of an offline store. */
export interface SqlEngine {
  /**
   * Runs one of sluice's own statements (sink, tables, jobs) with the engine's grants; `format` is
   * the output format unless the statement names its own; `params` fill `{name:Type}` placeholders.
   */
  query(sql: string, options: QueryOptions): Promise<Buffer>;
  /**
   * Runs a user's statement: exactly one read-only statement, on a read-only connection with the
   * user limits, behind a bounded queue of its own — never in the queue of sluice's writes.
   */
  userQuery(sql: string, options: UserQueryOptions): Promise<UserQueryResult>;
  close(): Promise<void>;
}

export interface QueryOptions {
  readonly format: string;
  readonly database?: string;
  readonly params?: Readonly<Record<string, string>>;
  /**
   * The connection: `internal` (default: the sink and this process's jobs) or `jobs` (statements
   * other sluice processes send through the writer socket), so neither waits behind the other.
   */
  readonly lane?: 'internal' | 'jobs';
}

export interface UserQueryOptions {
  readonly format: string;
  readonly database?: string;
  readonly params?: Readonly<Record<string, string>>;
  /** Aborting cancels the query in the engine (a client that went away). */
  readonly signal?: AbortSignal;
}

export interface UserQueryResult {
  readonly bytes: Buffer;
  /** The output format: the statement's FORMAT clause, else the requested default. */
  readonly format: string;
}

export interface ChdbEngineOptions {
  /** Bounds of users' queries (SLUICE_SQL_*); ClickHouse enforces them. */
  readonly limits?: SqlLimits;
}

interface ChdbResult {
  bytes(): Uint8Array;
}

interface ChdbSession {
  queryAsync(query: string, options?: { format?: string }): Promise<ChdbResult>;
  queryBindAsync(query: string, params: object, options?: { format?: string }): Promise<ChdbResult>;
  close(): void;
}

interface ChdbAnalysis {
  readonly statementCount: number;
  readonly queryClass: number;
}

/** chDB's durable adapter: its `analyze` is ClickHouse's own parser classifying statements. */
interface ChdbAnalyzer {
  start(options: { readonly dataPath: string; readonly backupsAllowedPath: string }): Promise<void>;
  analyze(sql: string, targetDatabase: string): Promise<ChdbAnalysis>;
  query(sql: string, format: string): Promise<string>;
  close(): Promise<void>;
}

interface ChdbLibrary {
  readonly Session: new (path: string, options?: { connectionArgs?: readonly string[] }) => ChdbSession;
  /** Resolves once no native call and no deferred connection teardown is pending in the process. */
  readonly drainPending: () => Promise<void>;
  readonly ChdbNodeEngine: new (options?: { extraArgs?: readonly string[] }) => ChdbAnalyzer;
}

// chdb is CommonJS; typed here, as its own .d.ts is not ESM-resolvable under NodeNext.
const require = createRequire(import.meta.url);
let library: ChdbLibrary | undefined;

/**
 * chDB, loaded when the first engine starts rather than when this module is imported: its
 * library puts about 140 MiB in resident memory, which a process that never opens the offline
 * store (`sluice run pipeline`, say) need not carry.
 */
function chdb(): ChdbLibrary {
  if (!library) {
    const { Session, drainPending } = require('chdb') as Pick<ChdbLibrary, 'Session' | 'drainPending'>;
    const { ChdbNodeEngine } = require('chdb/durable/node') as Pick<ChdbLibrary, 'ChdbNodeEngine'>;
    library = { Session, drainPending, ChdbNodeEngine };
  }
  return library;
}

/** chdb_query_class values (ClickHouse's parser): see chdb/durable's engine adapter. */
const QUERY_CLASSES = ['READ_ONLY', 'MUTATING', 'MUTATING_GLOBAL', 'CONTROL', 'UNKNOWN'] as const;

/**
 * Embedded ClickHouse (chDB, a ClickHouse 26.x engine in the process) on a data directory.
 *
 * chDB allows one data directory per process, and several connections to it that run in
 * parallel, each with its own settings. This engine opens:
 * - `internal`: sluice's own statements (the sink, tables, this process's jobs), priority 1;
 * - `jobs`: statements of sluice's jobs in other processes (the writer socket), priority 1;
 * - users' connections: `readonly=1` with the user limits, priority 10, a bounded pool;
 * - an inspector: ClickHouse's parser, which classifies and formats users' statements before
 *   they reach a users' connection.
 * Each connection runs its statements one at a time. The first connection loads the engine's
 * access configuration (offline/access.ts), which limits what any statement may do.
 */
export class ChdbEngine implements SqlEngine {
  readonly limits: SqlLimits;
  private readonly internal: Lane;
  private readonly jobs: Lane;
  private readonly users: LanePool;
  private readonly inspector: Serial<ChdbAnalyzer>;
  private readonly verified: Promise<void>;
  private closed = false;

  constructor(
    readonly dataDir: string,
    options: ChdbEngineOptions = {},
  ) {
    this.limits = options.limits ?? DEFAULT_SQL_LIMITS;
    const { Session, ChdbNodeEngine } = chdb();
    mkdirSync(dataDir, { recursive: true });
    const configFile = writeAccessConfigSync(path.join(dataDir, 'sluice-access'));
    // The first connection starts the engine: the configuration is read now or never.
    this.internal = new Lane(new Session(dataDir, { connectionArgs: [`--config-file=${configFile}`, `--priority=${INTERNAL_PRIORITY}`] }));
    this.jobs = new Lane(new Session(dataDir, { connectionArgs: [`--priority=${INTERNAL_PRIORITY}`] }));
    const userArgs = userConnectionArgs(this.limits, { readonly: true });
    this.users = new LanePool(
      Array.from({ length: this.limits.maxConcurrentQueries }, () => new Lane(new Session(dataDir, { connectionArgs: userArgs }))),
    );
    const analyzer = new ChdbNodeEngine({ extraArgs: ['--readonly=1'] });
    this.inspector = new Serial(analyzer);
    this.verified = this.inspector
      .run((inspector) => inspector.start({ dataPath: dataDir, backupsAllowedPath: path.join(dataDir, 'sluice-backups') }))
      .then(() => this.verifyAccess());
    this.verified.catch(() => undefined);
  }

  query(sql: string, options: QueryOptions): Promise<Buffer> {
    // Nothing new starts once closing: a statement still running when the connections close defers
    // their teardown past `close` (chDB's), and an exit then finds the engine open.
    if (this.closed) return Promise.reject(closingError());
    return (options.lane === 'jobs' ? this.jobs : this.internal).run(sql, options);
  }

  async userQuery(sql: string, options: UserQueryOptions): Promise<UserQueryResult> {
    if (this.closed) throw closingError();
    await this.verified;
    const database = options.database ?? 'default';
    const statement = await this.inspect(sql, database, options.params ?? {});
    const lane = await this.users.acquire(this.limits.maxExecutionTimeS * 1000, options.signal);
    // A marker the inspector can find the running query by in system.processes, to cancel it.
    const marker = randomUUID();
    const cancel = (): void => void this.cancel(marker);
    options.signal?.addEventListener('abort', cancel, { once: true });
    try {
      const bytes = await lane.run(`/* sluice-user-query ${marker} */ ${sql}`, {
        format: options.format,
        database,
        ...(options.params ? { params: options.params } : {}),
      });
      return { bytes, format: statement.format ?? options.format };
    } finally {
      options.signal?.removeEventListener('abort', cancel);
      this.users.release(lane);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.verified.catch(() => undefined);
    // Users' queries end now rather than at their time limit.
    await this.cancel('');
    await Promise.all([this.internal.drain(), this.jobs.drain(), this.users.drain()]);
    await this.inspector.run((inspector) => inspector.close()).catch(() => undefined);
    for (const lane of this.users.lanes) lane.close();
    this.jobs.close();
    this.internal.close();
    // A connection with a native call still running (one abandoned at its time limit) closes when
    // the call ends: closed means closed.
    await chdb().drainPending();
  }

  /** ClickHouse's parser decides what the statement is; `inspectUserStatement` decides whether it may run. */
  private async inspect(sql: string, database: string, params: Readonly<Record<string, string>>): Promise<StatementAnalysis> {
    if (sql.includes('\0'))
      throw new ClickHouseError(62, 'Code: 62. DB::Exception: Syntax error: the query contains a NUL byte. (SYNTAX_ERROR)');
    const [canonical, analysis] = await this.inspector.run(async (inspector) => {
      try {
        const formatted = await inspector.query(`SELECT formatQuery(${stringLiteral(sql)})`, 'TSVRaw');
        return [formatted, await inspector.analyze(sql, database)] as const;
      } catch (error) {
        throw tidyInspectionError(error, sql);
      }
    });
    return inspectUserStatement({
      canonical,
      statementCount: analysis.statementCount,
      queryClass: QUERY_CLASSES[analysis.queryClass] ?? 'UNKNOWN',
      params,
    });
  }

  /** Cancels the user query carrying `marker` (KILL QUERY finds it by its text); '' cancels them all. */
  private async cancel(marker: string): Promise<void> {
    await this.inspector
      .run((inspector) =>
        inspector.query(`KILL QUERY WHERE position(query, concat('sluice-user-query ', ${stringLiteral(marker)})) > 0 ASYNC`, 'TSV'),
      )
      .catch(() => undefined);
  }

  /**
   * Proves the access configuration is in force: a table function must be refused for lack of a
   * grant. It is not when another connection started the engine in this process without it.
   */
  private async verifyAccess(): Promise<void> {
    try {
      await this.internal.run(`SELECT count() FROM file('/dev/null', 'LineAsString')`, { format: 'TSV' });
    } catch (error) {
      if (error instanceof ClickHouseError && error.clickhouseCode === 497) return;
      throw error;
    }
    throw new ClickHouseError(
      497,
      `Code: 497. DB::Exception: sluice: the embedded ClickHouse at ${this.dataDir} was started without sluice's access configuration ` +
        "(another connection opened it first in this process); refusing users' queries. (ACCESS_DENIED)",
    );
  }
}

/** One chDB connection and the statements queued on it: a connection runs one at a time. */
class Lane {
  private tail: Promise<unknown> = Promise.resolve();
  private database = 'default';

  constructor(private readonly session: ChdbSession) {}

  run(sql: string, options: Omit<QueryOptions, 'lane'>): Promise<Buffer> {
    const task = async (): Promise<Buffer> => {
      try {
        const database = options.database ?? 'default';
        if (database !== this.database) {
          await this.session.queryAsync(`USE ${quoteIdentifier(database)}`);
          this.database = database;
        }
        const params = options.params ?? {};
        const result =
          Object.keys(params).length > 0
            ? await this.session.queryBindAsync(sql, params, { format: options.format })
            : await this.session.queryAsync(sql, { format: options.format });
        return Buffer.from(result.bytes());
      } catch (error) {
        throw parseClickHouseError(error);
      }
    };
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once everything queued has run. */
  async drain(): Promise<void> {
    await this.tail;
  }

  close(): void {
    this.session.close();
  }
}

/** Connections lent one request at a time; requests wait in order, for a bounded time. */
class LanePool {
  private readonly free: Lane[];
  private readonly waiting: { readonly grant: (lane: Lane) => void }[] = [];
  static readonly MAX_WAITING = 64;

  constructor(readonly lanes: readonly Lane[]) {
    this.free = [...lanes];
  }

  acquire(timeoutMs: number, signal?: AbortSignal): Promise<Lane> {
    const lane = this.free.pop();
    if (lane) return Promise.resolve(lane);
    if (this.waiting.length >= LanePool.MAX_WAITING) return Promise.reject(tooManyQueries(this.lanes.length));
    return new Promise<Lane>((resolve, reject) => {
      const entry = {
        grant: (granted: Lane) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', abandon);
          resolve(granted);
        },
      };
      const leave = (error: Error): void => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) this.waiting.splice(index, 1);
        signal?.removeEventListener('abort', abandon);
        reject(error);
      };
      const abandon = (): void => leave(new ClickHouseError(394, 'Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)'));
      const timer = setTimeout(() => leave(tooManyQueries(this.lanes.length)), timeoutMs);
      signal?.addEventListener('abort', abandon, { once: true });
      this.waiting.push(entry);
    });
  }

  release(lane: Lane): void {
    const next = this.waiting.shift();
    if (next) next.grant(lane);
    else this.free.push(lane);
  }

  async drain(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.drain()));
  }
}

/** Calls on one object, one at a time (a chDB connection must not run two statements at once). */
class Serial<T> {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly target: T) {}

  run<R>(call: (target: T) => Promise<R>): Promise<R> {
    const task = (): Promise<R> => call(this.target);
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

function tooManyQueries(maximum: number): ClickHouseError {
  return new ClickHouseError(
    202,
    `Code: 202. DB::Exception: Too many simultaneous queries. Maximum: ${maximum}. (TOO_MANY_SIMULTANEOUS_QUERIES)`,
  );
}

/** What a statement gets once the engine is closing (ClickHouse's ABORTED). */
function closingError(): ClickHouseError {
  return new ClickHouseError(1000, 'Code: 1000. DB::Exception: the embedded store is closing. (ABORTED)');
}

/**
 * The parser's error for the user's text, without the inspection query around it (ClickHouse
 * appends "In scope SELECT formatQuery('...')" to what it says about the text itself).
 */
function tidyInspectionError(error: unknown, sql: string): ClickHouseError {
  const parsed = parseClickHouseError(error instanceof Error ? new Error(error.message.replace(/^durable:\s*/, '')) : error);
  const scope = parsed.message.indexOf(': In scope SELECT formatQuery(');
  if (scope < 0) return parsed;
  const suffix = /\(([A-Z_]+)\)\s*$/.exec(parsed.message)?.[0] ?? '';
  const message = `${parsed.message.slice(0, scope).replace(/\.\s*$/, '')}. ${suffix}`.trim();
  return new ClickHouseError(parsed.clickhouseCode, message, { cause: error, context: { length: sql.length } });
}

export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}

/** A ClickHouse string literal holding exactly `value` (only ' and \ are special inside one). */
function stringLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}
