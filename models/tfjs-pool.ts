import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SluiceError } from '../common/errors.js';
import type { ScoringNetwork } from './network.js';
import type { EpochLog, TrialConfig } from './trainer.js';

/**
 * TensorFlow.js trials in parallel: worker threads (one per core the caller grants), each with its
 * own wasm backend and a copy of the data. A trial is pinned to one worker for its whole life, so
 * successive halving continues it where it stopped (weights and optimizer state stay there).
 * Every trial computes what it would compute alone in the main thread — same wasm, same seed, same
 * order — whichever worker runs it. Worker threads end with the process.
 */

/** Rows × features, row-major; NaN is a missing value. */
export interface PoolMatrix {
  readonly values: Float64Array;
  readonly labels: Float64Array;
  readonly rows: number;
}

export interface PoolData {
  readonly features: readonly string[];
  readonly train: PoolMatrix;
  readonly validation?: PoolMatrix;
  readonly test?: PoolMatrix;
}

export interface TrialEpoch extends EpochLog {
  /** Log loss on the validation split after the epoch (null without one). */
  readonly validationLoss: number | null;
}

export interface FinishedTrial {
  readonly network: ScoringNetwork;
  /** The trainer's own float32 scores of the splits it holds. */
  readonly scores: { readonly validation?: Float32Array; readonly test?: Float32Array };
}

export type WorkerRequest =
  | { readonly requestId: number; readonly op: 'create'; readonly id: string; readonly config: TrialConfig }
  | { readonly requestId: number; readonly op: 'train'; readonly id: string; readonly epochs: number }
  | { readonly requestId: number; readonly op: 'finish'; readonly id: string }
  | { readonly requestId: number; readonly op: 'dispose'; readonly id: string };

export type WorkerReply =
  | { readonly requestId: number; readonly ok: false; readonly error: string }
  | {
      readonly requestId: number;
      readonly ok: true;
      readonly backend?: string;
      readonly epochs?: readonly TrialEpoch[];
      readonly network?: ScoringNetwork;
      readonly scores?: FinishedTrial['scores'];
    };

type RequestBody = WorkerRequest extends infer Request ? (Request extends WorkerRequest ? Omit<Request, 'requestId'> : never) : never;

export class TrainerPoolError extends SluiceError {}

/** Rows of possibly missing values as a pool matrix. */
export function poolMatrix(rows: readonly (readonly (number | null)[])[], labels: readonly number[], width: number): PoolMatrix {
  const values = new Float64Array(rows.length * width);
  rows.forEach((row, index) => {
    for (let column = 0; column < width; column++) values[index * width + column] = row[column] ?? Number.NaN;
  });
  return { values, labels: Float64Array.from(labels), rows: rows.length };
}

type Pending = { resolve: (reply: WorkerReply & { ok: true }) => void; reject: (error: Error) => void };

/** Starts the worker module: compiled JavaScript as it is, TypeScript sources through tsx's loader. */
function startWorker(data: PoolData): Worker {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './tfjs-worker.ts' : './tfjs-worker.js', import.meta.url);
  if (entry.pathname.endsWith('.js')) return new Worker(entry, { workerData: { data } });
  // tsx's ESM entry (require.resolve would give its CommonJS one), found through its package.json
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const exported = (require('tsx/package.json') as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api'];
  const tsx = pathToFileURL(path.join(path.dirname(manifest), exported?.import.default ?? 'dist/esm/api/index.mjs')).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: { data } });
}

export class TfjsPool {
  private nextRequest = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly pinned = new Map<string, number>();
  private placed = 0;
  private failure: Error | undefined;

  private constructor(private readonly workers: readonly Worker[]) {
    workers.forEach((worker, index) => {
      worker.on('message', (reply: WorkerReply) => {
        const waiting = this.pending.get(reply.requestId);
        if (!waiting) return;
        this.pending.delete(reply.requestId);
        if (reply.ok) waiting.resolve(reply);
        else waiting.reject(new TrainerPoolError('SLUICE_TRAINER_WORKER', `TensorFlow.js worker ${index}: ${reply.error}`));
      });
      worker.on('error', (error) =>
        this.fail(
          new TrainerPoolError('SLUICE_TRAINER_WORKER', `TensorFlow.js worker ${index} failed: ${error.message}`, { cause: error }),
        ),
      );
      worker.on('exit', (code) => {
        if (this.workers.length > 0 && this.pending.size > 0)
          this.fail(
            new TrainerPoolError('SLUICE_TRAINER_WORKER', `TensorFlow.js worker ${index} exited (code ${code}) with requests in flight`),
          );
      });
    });
  }

  /** A pool of `size` workers, each holding `data`. */
  static start(data: PoolData, size: number): TfjsPool {
    const count = Math.max(1, Math.floor(size));
    return new TfjsPool(Array.from({ length: count }, () => startWorker(data)));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Which worker a trial lives on. */
  workerOf(id: string): number {
    const worker = this.pinned.get(id);
    if (worker === undefined) throw new TrainerPoolError('SLUICE_TRAINER_UNKNOWN_TRIAL', `no trial ${id} in the pool`);
    return worker;
  }

  /** Creates a trial on the next worker in turn (or on `worker`). */
  async create(id: string, config: TrialConfig, worker = this.placed++ % this.workers.length): Promise<string> {
    this.pinned.set(id, worker);
    const reply = await this.request(worker, { op: 'create', id, config });
    return reply.backend ?? 'unknown';
  }

  /** Trains a trial on to `epochs` epochs in all; the epochs it trained now. */
  async trainTo(id: string, epochs: number): Promise<readonly TrialEpoch[]> {
    return (await this.request(this.workerOf(id), { op: 'train', id, epochs })).epochs ?? [];
  }

  async finish(id: string): Promise<FinishedTrial> {
    const reply = await this.request(this.workerOf(id), { op: 'finish', id });
    if (!reply.network) throw new TrainerPoolError('SLUICE_TRAINER_WORKER', `trial ${id}: the worker sent no network`);
    return { network: reply.network, scores: reply.scores ?? {} };
  }

  async dispose(id: string): Promise<void> {
    await this.request(this.workerOf(id), { op: 'dispose', id });
    this.pinned.delete(id);
  }

  async close(): Promise<void> {
    const workers = [...this.workers];
    (this.workers as Worker[]).length = 0;
    await Promise.all(workers.map((worker) => worker.terminate()));
    this.fail(new TrainerPoolError('SLUICE_TRAINER_POOL_CLOSED', 'the TensorFlow.js pool was closed'));
  }

  private request(worker: number, body: RequestBody): Promise<WorkerReply & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const target = this.workers[worker];
    if (!target) return Promise.reject(new TrainerPoolError('SLUICE_TRAINER_POOL_CLOSED', 'the TensorFlow.js pool is closed'));
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      target.postMessage({ ...body, requestId });
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}
