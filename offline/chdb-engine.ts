import { createRequire } from 'node:module';
import { parseClickHouseError } from './errors.js';

/** What the SQL endpoint and the sink need of an offline store: run one statement. */
export interface SqlEngine {
  /**
   * Runs one statement; `format` is the output format unless the statement names its own;
   * `params` fill `{name:Type}` placeholders (ClickHouse's `param_<name>` URL parameters).
   */
  query(sql: string, options: QueryOptions): Promise<Buffer>;
  close(): Promise<void>;
}

export interface QueryOptions {
  readonly format: string;
  readonly database?: string;
  readonly params?: Readonly<Record<string, string>>;
}

interface ChdbResult {
  bytes(): Uint8Array;
}

interface ChdbSession {
  queryAsync(query: string, options?: { format?: string }): Promise<ChdbResult>;
  queryBindAsync(query: string, params: object, options?: { format?: string }): Promise<ChdbResult>;
  close(): void;
}

// chdb is CommonJS; its Session is all we use (typed here, as its own .d.ts is not ESM-resolvable under NodeNext).
const { Session } = createRequire(import.meta.url)('chdb') as { Session: new (path: string) => ChdbSession };

/**
 * Embedded ClickHouse (chDB, a ClickHouse 26.x engine in the process) on a data directory.
 * chDB allows one data directory per process: the process that owns it serves SQL to the others.
 * Statements run one at a time, so a `USE <database>` for one never leaks into another.
 */
export class ChdbEngine implements SqlEngine {
  private readonly session: ChdbSession;
  private queue: Promise<unknown> = Promise.resolve();
  private currentDatabase = 'default';

  constructor(readonly dataDir: string) {
    this.session = new Session(dataDir);
  }

  query(sql: string, options: QueryOptions): Promise<Buffer> {
    const run = async (): Promise<Buffer> => {
      try {
        const database = options.database ?? 'default';
        if (database !== this.currentDatabase) {
          await this.session.queryAsync(`USE ${quoteIdentifier(database)}`);
          this.currentDatabase = database;
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
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): Promise<void> {
    this.session.close();
    return Promise.resolve();
  }
}

export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}
