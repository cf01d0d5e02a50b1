import path from 'node:path';
import { readJsonFile } from '../common/files.js';

/** Where each running service listens; `sluice status --json` prints this. */
export interface StackEndpoints {
  /** Bootstrap servers, `host:port[,host:port]`. */
  readonly kafka: string;
  /** The Confluent-compatible schema registry, `http://host:port`. */
  readonly schemaRegistry: string;
  /** Prometheus metrics of the stages (`/health` and `/ready` beside it). */
  readonly metrics: string;
  /** The built-in dashboard page (on the ops port, beside /metrics). */
  readonly dashboard?: string;
  /** The embedded ClickHouse's HTTP interface (curl, @clickhouse/client, Grafana), or CLICKHOUSE_URL without credentials. */
  readonly clickhouse: string;
  /** Online feature lookups: GET /features/<view>/<entity>, POST /features. */
  readonly features: string;
  /** Synchronous predictions: POST /predict/<model>. */
  readonly predict: string;
}

/** What `sluice up` writes into the data directory so that `sluice status` can find it. */
export interface StackState {
  readonly pid: number;
  readonly startedAt: string;
  readonly dataDir: string;
  /** The topology file the stack runs (CLI commands on this data directory use it by default). */
  readonly topology: string;
  readonly endpoints: StackEndpoints;
  readonly kafkaMode: 'local' | 'external';
  /** The local broker's JVM, when there is one. */
  readonly kafkaPid?: number;
}

/**
 * The running stack's `stack.json`, read without loading the stack's services: what `sluice status`,
 * `sluice sql` and every command that looks for the cluster need, in a few milliseconds.
 */
export const STACK_FILE = 'stack.json';

export async function readStackState(dataDir: string): Promise<StackState | undefined> {
  return readJsonFile<StackState>(path.join(dataDir, STACK_FILE));
}

/** Whether a process with this pid exists (and may be signalled, or belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The stack of this data directory when its process is alive. */
export async function runningStack(dataDir: string): Promise<StackState | undefined> {
  const saved = await readStackState(dataDir);
  return saved && isAlive(saved.pid) ? saved : undefined;
}
