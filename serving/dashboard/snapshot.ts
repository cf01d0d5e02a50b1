import type { MetricsRegistry } from '../../common/metrics.js';
import { quoteIdentifier, tableName, type OfflineStore } from '../../offline/index.js';
import type { StageStatus } from '../../streams/runtime/index.js';
import type { Topology } from '../../topology/index.js';
import { summarizeMetrics, type MetricsSummary } from './metrics-summary.js';

/** What the dashboard reads: the process's metrics, the offline store, the topology and what runs. */
export interface DashboardSource {
  readonly metrics: MetricsRegistry;
  /** The offline store (ClickHouse); undefined where the process has none. */
  readonly store: OfflineStore | undefined;
  readonly topology: Pick<Topology, 'sources' | 'views' | 'models'>;
  readonly topicPrefix: string;
  /** The stages this process runs and their tasks' states. */
  readonly stages: () => readonly StageStatus[];
  /** The version each model's inference scores with now, if one is loaded. */
  readonly servingVersion: (model: string) => number | undefined;
  /** The versions of a model on the registry topic, with their aliases now (ClickHouse keeps each version's first record). */
  readonly registeredVersions: (model: string) => readonly RegisteredVersion[];
}

export interface RegisteredVersion {
  readonly version: number;
  readonly aliases: readonly string[];
  readonly metrics: Readonly<Record<string, number>>;
  readonly trainer: string;
}

/** A box of the dataflow graph; `count` is a running total the page turns into a rate. */
export interface GraphNode {
  readonly id: string;
  readonly kind: 'topic' | 'stage' | 'sink';
  readonly label: string;
  readonly count: number;
}

/** A section that comes from SQL: its rows, or why there are none. */
export type SqlSection<T> = { readonly rows: readonly T[] } | { readonly error: string };

export interface ModelSnapshot {
  readonly name: string;
  readonly servingVersion: number | null;
  /** From the registry topic, as the model watcher follows it. */
  readonly versions: readonly { version: number; aliases: readonly string[]; auc: number | null; trainer: string }[];
  /** The last 1000 predictions by version and role (champion, canary, shadow, fallback). */
  readonly traffic: SqlSection<{ model_version: number; deployment: string; n: number }>;
  /** Predictions stored in ClickHouse. */
  readonly stored: SqlSection<{ n: number }>;
  /** Scores of the last 2000 model predictions, in ten bins of [0, 1]. */
  readonly histogram: SqlSection<{ bin: number; n: number }>;
}

export interface DashboardSnapshot {
  /** Wall-clock time of the snapshot (and of its metrics), ms. */
  readonly at: number;
  /** When the SQL sections were read, ms. */
  readonly sqlAt: number;
  /** Columns of the dataflow, left to right. */
  readonly graph: readonly (readonly GraphNode[])[];
  readonly metrics: MetricsSummary;
  readonly tasks: readonly { readonly stage: string; readonly ready: boolean; readonly states: Readonly<Record<string, number>> }[];
  readonly views: readonly {
    readonly name: string;
    readonly stats: SqlSection<{ rows: number; latest: string | null; age_s: number | null }>;
  }[];
  readonly models: readonly ModelSnapshot[];
  readonly deadLettersStored: SqlSection<{ stage: string; error_code: string; n: number }>;
  readonly drift: SqlSection<Record<string, unknown>>;
  readonly performance: SqlSection<Record<string, unknown>>;
  readonly alerts: SqlSection<Record<string, unknown>>;
}

/** The SQL of each section, as anyone can run it on the SQL endpoint (names without the topic prefix's dots). */
export const dashboardSql = {
  viewStats: (table: string) =>
    `SELECT count() AS rows, toString(max(event_time)) AS latest, if(count() = 0, NULL, dateDiff('second', max(event_time), now64(3))) AS age_s FROM ${quoteIdentifier(table)}`,
  traffic: (table: string) =>
    `SELECT model_version, toString(deployment) AS deployment, count() AS n FROM (SELECT model_version, deployment FROM ${quoteIdentifier(table)} ORDER BY predicted_at DESC LIMIT 1000) GROUP BY model_version, deployment ORDER BY n DESC`,
  storedPredictions: (table: string) => `SELECT count() AS n FROM ${quoteIdentifier(table)} FINAL`,
  histogram: (table: string) =>
    `SELECT least(toUInt8(floor(score * 10)), 9) AS bin, count() AS n FROM (SELECT score FROM ${quoteIdentifier(table)} WHERE fallback_reason IS NULL ORDER BY predicted_at DESC LIMIT 2000) GROUP BY bin ORDER BY bin`,
  deadLetters: (table: string) =>
    `SELECT stage, error_code, count() AS n FROM ${quoteIdentifier(table)} FINAL GROUP BY stage, error_code ORDER BY n DESC LIMIT 20`,
  latest: (table: string, orderBy: string) => `SELECT * FROM ${quoteIdentifier(table)} ORDER BY ${orderBy} DESC LIMIT 20`,
};

/** What the dashboard reads with SQL, read at `at`: refreshed in the background, not on every poll. */
interface SqlPart {
  readonly at: number;
  readonly views: DashboardSnapshot['views'];
  readonly models: ReadonlyMap<string, Pick<ModelSnapshot, 'traffic' | 'stored' | 'histogram'>>;
  readonly deadLettersStored: DashboardSnapshot['deadLettersStored'];
  readonly drift: DashboardSnapshot['drift'];
  readonly performance: DashboardSnapshot['performance'];
  readonly alerts: DashboardSnapshot['alerts'];
}

async function readSql(source: DashboardSource): Promise<SqlPart> {
  const at = Date.now();
  const sql = <T>(statement: string): Promise<SqlSection<T>> =>
    source.store
      ? source.store.query<T>(statement).then(
          (rows) => ({ rows }),
          (error: unknown) => ({ error: error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error) }),
        )
      : Promise.resolve({ error: 'this process has no offline store' });
  const views: { name: string; stats: SqlSection<{ rows: number; latest: string | null; age_s: number | null }> }[] = [];
  for (const view of source.topology.views)
    views.push({ name: view.name, stats: await sql(dashboardSql.viewStats(tableName(`features.${view.name}`))) });
  const models = new Map<string, Pick<ModelSnapshot, 'traffic' | 'stored' | 'histogram'>>();
  for (const model of source.topology.models) {
    const predictions = tableName(`predictions.${model.name}`);
    models.set(model.name, {
      traffic: await sql(dashboardSql.traffic(predictions)),
      stored: await sql(dashboardSql.storedPredictions(predictions)),
      histogram: await sql(dashboardSql.histogram(predictions)),
    });
  }
  return {
    at,
    views,
    models,
    deadLettersStored: await sql(dashboardSql.deadLetters(tableName('dlq'))),
    drift: await sql(dashboardSql.latest(tableName('monitoring.drift'), 'window_end')),
    performance: await sql(dashboardSql.latest(tableName('monitoring.performance'), 'window_end')),
    alerts: await sql(dashboardSql.latest(tableName('monitoring.alerts'), 'at')),
  };
}

/**
 * Snapshots for the page: the metrics as they are at each call, the SQL sections as last read.
 * SQL is read again in the background once its answer is older than `sqlRefreshMs`, so a page
 * polling every 2 s costs the offline store one round of queries per interval at most.
 */
export function dashboardSnapshots(source: DashboardSource, sqlRefreshMs = 5_000): () => Promise<DashboardSnapshot> {
  let current: SqlPart | undefined;
  let refreshing: Promise<SqlPart> | undefined;
  const refresh = (): Promise<SqlPart> =>
    (refreshing ??= readSql(source)
      .then((part) => (current = part))
      .finally(() => (refreshing = undefined)));
  return async () => {
    const part = current ?? (await refresh());
    if (Date.now() - part.at > sqlRefreshMs) refresh().catch(() => undefined);
    return compose(source, part);
  };
}

async function compose(source: DashboardSource, part: SqlPart): Promise<DashboardSnapshot> {
  const summary = summarizeMetrics(await source.metrics.getMetricsAsJSON());
  const noRows = { error: 'not read yet' };
  return {
    at: Date.now(),
    sqlAt: part.at,
    graph: dataflow(source, summary),
    metrics: summary,
    tasks: source.stages().map((status) => ({
      stage: status.stage,
      ready: status.ready,
      states: status.tasks.reduce<Record<string, number>>(
        (states, task) => ({ ...states, [task.state]: (states[task.state] ?? 0) + 1 }),
        {},
      ),
    })),
    views: part.views,
    models: source.topology.models.map((model) => ({
      name: model.name,
      servingVersion: source.servingVersion(model.name) ?? null,
      versions: source.registeredVersions(model.name).map((version) => ({
        version: version.version,
        aliases: version.aliases,
        auc: version.metrics.auc ?? null,
        trainer: version.trainer,
      })),
      traffic: part.models.get(model.name)?.traffic ?? noRows,
      stored: part.models.get(model.name)?.stored ?? noRows,
      histogram: part.models.get(model.name)?.histogram ?? noRows,
    })),
    deadLettersStored: part.deadLettersStored,
    drift: part.drift,
    performance: part.performance,
    alerts: part.alerts,
  };
}

/** sources → ingest → events → features → views → inference → predictions → sink, with running totals. */
function dataflow(source: DashboardSource, summary: MetricsSummary): GraphNode[][] {
  const { topology, topicPrefix: prefix } = source;
  const out = (topic: string): number => summary.topicsOut[`${prefix}${topic}`] ?? 0;
  const topic = (name: string, count: number): GraphNode => ({ id: `topic:${name}`, kind: 'topic', label: name, count });
  const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
  const events = topology.sources.map((s) => out(`events.${s.name}`));
  const features = topology.views.map((v) => out(`features.${v.name}`));
  const predictions = (model: string): number =>
    sum(summary.predictions.filter((entry) => entry.labels.model === model).map((entry) => entry.count));
  return [
    topology.sources.map((s) => topic(`raw.${s.name}`, summary.topicsIn[`${prefix}raw.${s.name}`] ?? 0)),
    [{ id: 'stage:ingest', kind: 'stage', label: 'ingest', count: sum(events) }],
    [...topology.sources.map((s, i) => topic(`events.${s.name}`, events[i] ?? 0)), topic('dlq', out('dlq'))],
    [{ id: 'stage:features', kind: 'stage', label: 'features', count: sum(features) }],
    topology.views.map((v, i) => topic(`features.${v.name}`, features[i] ?? 0)),
    topology.models.map((m) => ({
      id: `stage:inference-${m.name}`,
      kind: 'stage',
      label: `inference-${m.name}`,
      count: predictions(m.name),
    })),
    topology.models.map((m) => topic(`predictions.${m.name}`, out(`predictions.${m.name}`))),
    [{ id: 'sink:clickhouse', kind: 'sink', label: 'sink → ClickHouse', count: sum(Object.values(summary.sinkRows)) }],
  ];
}
