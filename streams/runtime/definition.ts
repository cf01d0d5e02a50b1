import { isObservable, lastValueFrom, toArray, defaultIfEmpty, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { StoreSpec } from '../../state/index.js';
import type { OutputRecord, RawRecord, StreamRecord } from './record.js';

/** What a stage's function sees besides the record. */
export interface TaskContext {
  readonly stage: string;
  /** The task: sub-topology and partition, e.g. `transactions.3`. */
  readonly task: string;
  readonly topic: string;
  readonly partition: number;
  /** This input's watermark in the task: max event time seen minus allowed lateness. */
  watermark(): number;
  /** This task's instance of a store the stage declared (KeyValueStore or WindowStore). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the store type it declared
  store<S>(name: string): S;
  readonly logger: Logger;
}

/**
 * A stage, declared: which topics it reads, how a message becomes a value, where its event time
 * is, and the function from one record to its outputs. The runtime does the rest: tasks,
 * offsets, transactions, backpressure, retries, dead letters, rebalances, metrics — and, when
 * stages are fused into a pipeline, hands a stage's output records to the next stage in memory.
 */
export interface StageDefinition<V> {
  readonly name: string;
  readonly inputs: readonly string[];
  /** Throws (DeserializationError, ValidationError, ...) for bytes that are not a valid value. */
  readonly decode: (record: RawRecord) => V | Promise<V>;
  /** Event time of a value; defaults to the Kafka timestamp. */
  readonly eventTime?: (value: V, record: RawRecord) => number;
  /** One record to zero or more outputs: an array, a promise of one, or an Observable of outputs. */
  readonly process: (record: StreamRecord<V>, context: TaskContext) => ProcessOutput;
  /**
   * `sequential` (default): each record is processed after the previous one finished — what a
   * stage with state needs. `parallel`: the records of a fetched chunk are started together and
   * their outputs kept in record order — for stateless stages that wait on I/O (model scoring
   * micro-batches a whole chunk into one call this way).
   */
  readonly ordering?: 'sequential' | 'parallel';
  /** What the records of a chunk will read, per store (a window start for window stores): loaded in one RocksDB call first. */
  readonly prefetch?: (record: StreamRecord<V>) => readonly { readonly store: string; readonly key: string; readonly window?: number }[];
  /**
   * Called when a partition starts fresh on this instance, moves away, or drops uncommitted work
   * after a failed commit: per-partition in-memory state must be cleared, since the records
   * behind it will be processed again.
   */
  readonly onPartitionReset?: (topic: string, partition: number) => void;
  /** State stores, one instance per task, restored from changelogs on assignment. */
  readonly stores?: readonly StoreSpec[];
  /**
   * Side effects outside Kafka that must happen before a commit's offsets (a sink's insert): called
   * synchronously when a commit of `task` starts — it takes what its records produced so far — and
   * the returned work runs before the transaction. Its failure fails the commit (retried from the
   * committed offsets), so with at_least_once such a stage writes every record at least once.
   */
  readonly beforeCommit?: (task: string) => (() => Promise<void>) | undefined;
}

export type ProcessOutput = readonly OutputRecord[] | Promise<readonly OutputRecord[]> | Observable<OutputRecord>;

/** Collects what a process function returned; an Observable must complete (its error fails the record). */
export async function collectOutputs(result: ProcessOutput): Promise<readonly OutputRecord[]> {
  if (isObservable(result)) return lastValueFrom(result.pipe(toArray(), defaultIfEmpty([] as OutputRecord[])));
  return result;
}
