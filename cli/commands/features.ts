import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { checkConsistency } from '../../jobs/consistency.js';
import { replayFeatures } from '../../jobs/replay.js';
import type { RangeBounds } from '../../kafka/topic-range.js';
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

export interface RangeOptions {
  readonly views?: string;
  readonly from?: string;
  readonly to?: string;
  readonly fromOffsets?: string;
  readonly toOffsets?: string;
}

function selectViews(topology: Topology, names: string | undefined): FeatureView[] {
  if (!names) return [...topology.views];
  return names.split(',').map((name) => {
    const view = topology.views.find((candidate) => candidate.name === name.trim());
    if (!view) throw new ConfigError(`no feature view "${name}"; views: ${topology.views.map((candidate) => candidate.name).join(', ')}`);
    return view;
  });
}

function parseTime(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const time = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(time)) throw new ConfigError(`${flag} takes epoch milliseconds or an ISO time, got "${text}"`);
  return time;
}

function parseOffsets(text: string | undefined, flag: string): Record<number, string> | undefined {
  if (text === undefined) return undefined;
  const offsets: Record<number, string> = {};
  for (const part of text.split(',')) {
    const match = /^(\d+):(\d+)$/.exec(part.trim());
    if (!match?.[1] || !match[2]) throw new ConfigError(`${flag} takes partition:offset pairs such as 0:100,1:250, got "${text}"`);
    offsets[Number(match[1])] = match[2];
  }
  return offsets;
}

function boundsOf(options: RangeOptions): RangeBounds {
  const fromTime = parseTime(options.from, '--from');
  const toTime = parseTime(options.to, '--to');
  const fromOffsets = parseOffsets(options.fromOffsets, '--from-offsets');
  const toOffsets = parseOffsets(options.toOffsets, '--to-offsets');
  return {
    ...(fromTime !== undefined ? { fromTime } : {}),
    ...(toTime !== undefined ? { toTime } : {}),
    ...(fromOffsets ? { fromOffsets } : {}),
    ...(toOffsets ? { toOffsets } : {}),
  };
}

async function versionsFor(
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

/** `sluice backfill`: recomputes views from events.<source> ranges into the offline store (idempotent). */
export async function backfillCommand(context: CommandContext, options: RangeOptions): Promise<number> {
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const views = selectViews(topology, options.views);
  const versions = await versionsFor(context, cluster, topology, views);
  const store = offlineStoreFor(context.config, cluster);
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
      bounds: boundsOf(options),
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
      `backfill: ${report.events} events → ${report.rows} rows (${written} new, ${report.rows - written} already there) in ${report.seconds.toFixed(1)} s; ${report.lateEvents} late events\n`,
    );
    return 0;
  } finally {
    bar.stop();
    await store.close();
  }
}

/** `sluice features check`: online (served) values vs values recomputed by replay. */
export async function checkCommand(context: CommandContext, options: RangeOptions & { readonly json?: boolean }): Promise<number> {
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const views = selectViews(topology, options.views);
  const versions = await versionsFor(context, cluster, topology, views);
  const bar = progressBar('check');
  const reports = await checkConsistency({
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-check', logger: context.logger }),
    topicPrefix: context.config.topicPrefix,
    registryUrl: cluster.registryUrl,
    views,
    versions,
    bounds: boundsOf(options),
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.stop();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(reports)}\n`);
  } else {
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

/** `sluice features get <view> <entity>`: an online lookup through the running stack. */
export async function getFeaturesCommand(context: CommandContext, view: string, entity: string): Promise<number> {
  const cluster = await findCluster(context.config);
  const url = cluster.stack?.endpoints.features;
  if (!url) throw new ConfigError('no online store to ask: start `sluice up`');
  const response = await fetch(`${url}/${encodeURIComponent(view)}/${encodeURIComponent(entity)}`);
  const text = await response.text();
  (response.ok ? process.stdout : process.stderr).write(`${text}\n`);
  return response.ok ? 0 : 1;
}
