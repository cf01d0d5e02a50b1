import os from 'node:os';
import type { Kafka } from 'kafkajs';
import { SluiceError } from '../common/errors.js';
import { loadAvsc, publishToRegistryTopic, readRegistryTopic, RegistryHttpClient } from '../schemas/index.js';

/**
 * Experiment tracking: every training run — `sluice train`, each trial of a tuning run and the
 * tuning run itself, a run an alert triggered — is a record in `registry.experiments` (compacted,
 * keyed `<experiment>:<run_id>`, schemas/avro/registry.experiments.avsc), published when it starts
 * (RUNNING) and again when it ends (FINISHED or FAILED). The sink makes the topic the
 * `registry_experiments` table; replaying the topic rebuilds the list.
 */

export interface OffsetRange {
  readonly topic: string;
  readonly partition: number;
  /** Inclusive. */
  readonly start_offset: number;
  /** Exclusive. */
  readonly end_offset: number;
}

/** Which data trained a model: enough to read exactly the same records again (sluice train --from-run). */
export interface DatasetManifest {
  readonly ranges: readonly OffsetRange[];
  readonly feature_versions: Readonly<Record<string, number>>;
  readonly dataset_sha256: string | null;
  readonly inputs: readonly string[];
  readonly schema_ids: readonly { readonly topic: string; readonly ids: readonly number[] }[];
  readonly feature_views: readonly { readonly name: string; readonly version: number; readonly definition_hash: string }[];
  readonly label_source: string | null;
  readonly label_window_ms: number | null;
  readonly selection: {
    readonly event_time_from: number | null;
    readonly event_time_to: number | null;
    /** Record-time or offset bounds on the scored events' topic, resolved to offsets (empty: none). */
    readonly offsets: readonly OffsetRange[];
  } | null;
  readonly split: {
    readonly rows: number;
    readonly train_rows: number;
    readonly validation_rows: number;
    readonly test_rows: number;
    readonly test_fraction: number;
    readonly validation_fraction: number;
    readonly validation_from: number | null;
    readonly test_from: number | null;
  } | null;
}

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED';

/** Why a run happened. */
export interface RunTrigger {
  /** manual, tuning, trial, alert, rebuild or demo. */
  readonly kind: string;
  readonly alert_id: string | null;
  /** A trial's tuning run. */
  readonly parent_run_id: string | null;
  /** The run whose manifest a rebuild read. */
  readonly from_run_id: string | null;
}

export interface EpochMetrics {
  readonly epoch: number;
  readonly train_loss: number | null;
  readonly validation_loss: number | null;
  readonly seconds: number | null;
}

export interface Machine {
  /** CPU or GPU. */
  readonly device: string;
  readonly device_name: string;
  readonly host: string;
  readonly cpus: number;
}

export interface ExperimentRun {
  readonly experiment: string;
  readonly run_id: string;
  readonly status: RunStatus;
  readonly params: Readonly<Record<string, string>>;
  readonly metrics: Readonly<Record<string, number>>;
  readonly dataset: DatasetManifest | null;
  readonly code_commit: string | null;
  readonly environment: Readonly<Record<string, string>>;
  readonly resources: Readonly<Record<string, number>>;
  readonly started_at: number;
  readonly ended_at: number | null;
  readonly model_version: number | null;
  readonly error: string | null;
  readonly trainer: string | null;
  readonly seed: number | null;
  readonly trigger: RunTrigger | null;
  readonly epochs: readonly EpochMetrics[];
  readonly machine: Machine | null;
  readonly durations: Readonly<Record<string, number>>;
}

export class ExperimentError extends SluiceError {}

export interface ExperimentsTopic {
  readonly kafka: Kafka;
  /** `<prefix>registry.experiments`. */
  readonly topic: string;
  readonly registryUrl: string;
}

/** The registered schema id of registry.experiments values (registering it is idempotent: `sluice up` did already). */
export async function experimentsSchemaId(registryUrl: string, topic: string): Promise<number> {
  return new RegistryHttpClient(registryUrl).register(`${topic}-value`, loadAvsc('registry.experiments'));
}

/** Publishes runs (their latest state) in one send. */
export async function publishRuns(target: ExperimentsTopic & { readonly schemaId: number }, runs: readonly ExperimentRun[]): Promise<void> {
  await publishToRegistryTopic(
    { ...target, contract: 'registry.experiments' },
    target.schemaId,
    runs.map((run) => ({ key: `${run.experiment}:${run.run_id}`, value: withFiniteMetrics(run) })),
  );
}

/** Avro doubles hold NaN, but ClickHouse and JSON readers do better without: non-finite metrics are left out. */
function withFiniteMetrics(run: ExperimentRun): ExperimentRun {
  return { ...run, metrics: Object.fromEntries(Object.entries(run.metrics).filter(([, value]) => Number.isFinite(value))) };
}

/** Every run's latest state, oldest start first. */
export async function readExperiments(source: ExperimentsTopic): Promise<ExperimentRun[]> {
  const runs = await readRegistryTopic<ExperimentRun>({ ...source, contract: 'registry.experiments' });
  // a tuning run's trials start together: in trial order after it
  const trial = (run: ExperimentRun): number => (run.params.trial === undefined ? -1 : Number(run.params.trial));
  return [...runs.values()].sort(
    (left, right) => left.started_at - right.started_at || trial(left) - trial(right) || left.run_id.localeCompare(right.run_id),
  );
}

/** A run by its id or a unique prefix of it. */
export function findRun(runs: readonly ExperimentRun[], id: string): ExperimentRun {
  const exact = runs.find((run) => run.run_id === id);
  if (exact) return exact;
  const matches = runs.filter((run) => run.run_id.startsWith(id));
  if (matches.length === 1 && matches[0]) return matches[0];
  throw new ExperimentError(
    matches.length === 0 ? 'SLUICE_UNKNOWN_RUN' : 'SLUICE_AMBIGUOUS_RUN',
    matches.length === 0
      ? `no experiment run ${id} in registry.experiments (sluice experiments ls lists them)`
      : `run id prefix ${id} matches ${matches.length} runs: ${matches.map((run) => run.run_id).join(', ')}`,
  );
}

/** The machine this process trains on (TensorFlow.js: the CPU). */
export function cpuMachine(): Machine {
  return { device: 'CPU', device_name: os.cpus()[0]?.model.trim() ?? 'unknown', host: os.hostname(), cpus: os.availableParallelism() };
}

export interface Comparison {
  readonly runs: readonly string[];
  /** Rows whose values differ between the runs (all rows with `all`). */
  readonly params: readonly { readonly name: string; readonly values: readonly (string | null)[] }[];
  /** `best`: the index of the best run, for metrics with a direction (AUC, losses, ...) that differ. */
  readonly metrics: readonly { readonly name: string; readonly values: readonly (number | null)[]; readonly best: number | null }[];
  readonly sameParams: readonly string[];
}

/** Metrics with a direction (counts such as rows have none). */
const LOWER_IS_BETTER = /(loss|ece|_diff)$/;
const HIGHER_IS_BETTER = /(auc|precision|recall)$/;

/**
 * Params and metrics side by side: every param that differs (or `all`), with the trainer, seed,
 * trigger and dataset hash as params too, and every metric with the index of the best run.
 */
export function compareRuns(runs: readonly ExperimentRun[], options: { readonly all?: boolean } = {}): Comparison {
  const paramsOf = (run: ExperimentRun): Record<string, string> => ({
    trainer: run.trainer ?? '',
    seed: run.seed === null ? '' : String(run.seed),
    trigger: run.trigger?.kind ?? '',
    dataset_sha256: run.dataset?.dataset_sha256 ?? '',
    status: run.status,
    ...run.params,
  });
  const params = runs.map(paramsOf);
  const names = [...new Set(params.flatMap((entry) => Object.keys(entry)))];
  const differing = names.filter((name) => new Set(params.map((entry) => entry[name] ?? null)).size > 1);
  const metricNames = [...new Set(runs.flatMap((run) => Object.keys(run.metrics)))].sort();
  return {
    runs: runs.map((run) => run.run_id),
    params: (options.all ? names : differing).map((name) => ({ name, values: params.map((entry) => entry[name] ?? null) })),
    sameParams: names.filter((name) => !differing.includes(name)),
    metrics: metricNames.map((name) => {
      const values = runs.map((run) => run.metrics[name] ?? null);
      let best: number | null = null;
      const lower = LOWER_IS_BETTER.test(name);
      if (!lower && !HIGHER_IS_BETTER.test(name)) return { name, values, best };
      values.forEach((value, index) => {
        if (value === null || !Number.isFinite(value)) return;
        const current = best === null ? null : values[best];
        if (current === null || current === undefined || (lower ? value < current : value > current)) best = index;
      });
      return { name, values, best: new Set(values).size > 1 ? best : null };
    }),
  };
}
