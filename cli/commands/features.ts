import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { checkConsistency } from '../../jobs/consistency.js';
import { describeRange } from '../../jobs/range.js';
import { replayFeatures } from '../../jobs/replay.js';
import { ensureTables, featureTable, insertNew } from '../../offline/index.js';
import { featureVector } from '../../streams/features/stage.js';
import { publishFeatureViews, readFeatureRegistry } from '../../streams/features/registry.js';
import type { FeatureView } from '../../topology/features.js';
import { registerSchemas } from '../../schemas/index.js';
import { topologySubjects } from '../../app/stages.js';
import type { Topology } from '../../topology/index.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster, offlineStoreFor, type Cluster } from '../cluster.js';
import { progressBar } from '../progress.js';
import { rangeOf, type RangeOptions } from '../range.js';

export type { RangeOptions };

function selectViews(topology: Topology, names: string | undefined): FeatureView[] {
  if (!names) return [...topology.views];
  return names.split(',').map((name) => {
    const view = topology.views.find((candidate) => candidate.name === name.trim());
    if (!view) throw new ConfigError(`no feature view "${name}"; views: ${topology.views.map((candidate) => candidate.name).join(', ')}`);
    return view;
  });
}

/** Publishes the views' definitions (a changed one gets the next version) and returns their versions: for jobs that write rows. */
async function publishedVersions(
  context: CommandContext,
  cluster: Cluster,
  topology: Topology,
  views: readonly FeatureView[],
): Promise<Map<string, number>> {
  const schemaIds = await registerSchemas(cluster.registryUrl, topologySubjects(context.config.topicPrefix, topology), context.logger);
  return publishFeatureViews(views, {
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    topic: `${context.config.topicPrefix}registry.features`,
    registryUrl: cluster.registryUrl,
    schemaId: schemaIds.get(`${context.config.topicPrefix}registry.features-value`) ?? 0,
    logger: context.logger,
  });
}

/** The registered version of each view's current definition, read without writing anything: for read-only commands. */
async function registeredVersions(
  context: CommandContext,
  cluster: Cluster,
  topology: Topology & { readonly file?: string },
  views: readonly FeatureView[],
): Promise<Map<string, number>> {
  const records = await readFeatureRegistry(
    createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    `${context.config.topicPrefix}registry.features`,
    cluster.registryUrl,
  );
  return new Map(
    views.map((view) => {
      const record = records.find((candidate) => candidate.name === view.name && candidate.definition_hash === view.hash);
      if (!record)
        throw new ConfigError(
          `feature view ${view.name} as defined in ${topology.file ?? 'the topology'} is not in registry.features: no row was computed with this definition yet (start the stack with it, or run \`sluice backfill\`)`,
        );
      return [view.name, record.version];
    }),
  );
}

/** `sluice backfill`: recomputes views from events.<source> ranges into the offline store (idempotent). */
export async function backfillCommand(
  context: CommandContext,
  options: RangeOptions & { readonly views?: string; readonly monitoring?: boolean },
): Promise<number> {
  const range = rangeOf(options);
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const views = selectViews(topology, options.views);
  const versions = await publishedVersions(context, cluster, topology, views);
  const store = await offlineStoreFor(context.config, cluster);
  const tables = new Map(views.map((view) => [view.name, featureTable(view)]));
  const bar = progressBar('backfill');
  try {
    await ensureTables(store, [...tables.values()]);
    let written = 0;
    const report = await replayFeatures({
      kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-backfill', logger: context.logger }),
      topicPrefix: context.config.topicPrefix,
      registryUrl: cluster.registryUrl,
      views,
      versions,
      range,
      onRows: async (rows) => {
        for (const view of views) {
          const table = tables.get(view.name);
          const mine = rows.filter((row) => row.view === view.name);
          if (!table || mine.length === 0) continue;
          written += await insertNew(
            store,
            table,
            mine.map((row) => table.toRow(featureVector(row), { partition: -1, offset: '-1', timestamp: 0, key: null, headers: {} })),
          );
        }
      },
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.stop();
    process.stdout.write(
      `backfill (${describeRange(range)}): ${report.selected} events → ${report.rows} rows (${written} new, ${report.rows - written} already there) in ${report.seconds.toFixed(1)} s; ${report.lateEvents} late events; ${report.events} records read\n`,
    );
    if (options.monitoring !== false) {
      const { backfillMonitoring, describeMonitoringBackfill } = await import('./monitoring.js');
      process.stdout.write(`${describeMonitoringBackfill(await backfillMonitoring(context, cluster, topology, store, range))}\n`);
    }
    return 0;
  } finally {
    bar.stop();
    await store.close();
  }
}

/** `sluice features check`: online (served) values vs values recomputed by replay. */
export async function checkCommand(
  context: CommandContext,
  options: RangeOptions & { readonly views?: string; readonly json?: boolean },
): Promise<number> {
  const range = rangeOf(options);
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const views = selectViews(topology, options.views);
  const versions = await registeredVersions(context, cluster, topology, views);
  const bar = progressBar('check');
  const reports = await checkConsistency({
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-check', logger: context.logger }),
    topicPrefix: context.config.topicPrefix,
    registryUrl: cluster.registryUrl,
    views,
    versions,
    range,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.stop();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(reports)}\n`);
  } else {
    process.stdout.write(`check (${describeRange(range)}):\n`);
    for (const report of reports) {
      process.stdout.write(
        `${report.view} v${report.version}: ${report.compared} compared, ${report.mismatched} mismatched, ${report.onlyLive} only live, ${report.onlyReplay} only replayed — mismatch rate ${report.mismatchRate}\n`,
      );
    }
  }
  return reports.every((report) => report.mismatchRate === 0) ? 0 : 2;
}

/** `sluice features ls`: the feature registry (every version of every view). */
export async function listFeaturesCommand(context: CommandContext, options: { readonly json?: boolean }): Promise<number> {
  const cluster = await findCluster(context.config);
  const records = await readFeatureRegistry(
    createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    `${context.config.topicPrefix}registry.features`,
    cluster.registryUrl,
  );
  if (options.json) {
    process.stdout.write(`${JSON.stringify(records)}\n`);
    return 0;
  }
  for (const record of records) {
    process.stdout.write(
      `${record.name} v${record.version}  ${record.source}/${record.entity}  ${record.window.kind.toLowerCase()} ${record.window.size_ms} ms  [${record.features.map((feature) => feature.name).join(', ')}]  ${record.owner}: ${record.description}\n`,
    );
  }
  return 0;
}
