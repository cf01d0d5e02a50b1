import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { ConfigError } from '../../common/errors.js';
import type { EventRange } from '../../jobs/range.js';
import { describeRange } from '../../jobs/range.js';
import { checkMonitoring, replayMonitoring, type MonitoringReplayOptions } from '../../jobs/monitoring.js';
import { createKafka, readRanges, resolveRanges, retryKafka } from '../../kafka/index.js';
import { ArtifactStore } from '../../models/registry.js';
import type { AlertRecord } from '../../monitoring/index.js';
import { ensureTables, insertNew, offlineTables, type OfflineStore } from '../../offline/index.js';
import { AvroSerde, avroType, loadAvsc } from '../../schemas/index.js';
import { ModelCatalog } from '../../streams/monitoring/index.js';
import type { Topology } from '../../topology/index.js';
import type { CommandContext } from '../action.js';
import { findCluster, type Cluster } from '../cluster.js';
import { rangeOf, type RangeOptions } from '../range.js';
import { commandTopology } from '../topology.js';

/**
 * Monitoring records are selected by the event-time start of their window; a range of Kafka
 * record times or offsets of events.<source> does not say which windows.
 */
export function monitoringWindows(range: EventRange): { from?: number; to?: number } | undefined {
  if (range.record) return undefined;
  return range.eventTime ?? {};
}

/** What a replay of the monitoring stages needs: the stages' settings, catalog and outcome partitions. */
export async function monitoringReplayOptions(
  context: CommandContext,
  cluster: Cluster,
  topology: Topology,
  kafka: Kafka,
  windows: { from?: number; to?: number },
): Promise<MonitoringReplayOptions> {
  const { config, logger } = context;
  const admin = kafka.admin();
  await retryKafka(() => admin.connect());
  let outcomePartitions = 1;
  try {
    // The performance stage routes outcomes over as many partitions as its widest predictions topic.
    for (const model of topology.models) {
      const topic = `${config.topicPrefix}predictions.${model.name}`;
      const metadata = await retryKafka(() => admin.fetchTopicMetadata({ topics: [topic] }));
      outcomePartitions = Math.max(outcomePartitions, metadata.topics[0]?.partitions.length ?? 1);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return {
    kafka,
    topicPrefix: config.topicPrefix,
    registryUrl: cluster.registryUrl,
    models: topology.models,
    settings: topology.monitoring,
    catalog: new ModelCatalog({
      kafka,
      topic: `${config.topicPrefix}registry.models`,
      registryUrl: cluster.registryUrl,
      artifacts: new ArtifactStore(path.join(config.dataDir, 'models')),
      logger,
      sketchK: topology.monitoring.sketchK,
    }),
    outcomePartitions,
    ...(windows.from !== undefined ? { from: windows.from } : {}),
    ...(windows.to !== undefined ? { to: windows.to } : {}),
  };
}

/** What a monitoring backfill wrote: records recomputed, and how many of them the table did not have. */
export interface MonitoringBackfill {
  readonly drift: number;
  readonly newDrift: number;
  readonly performance: number;
  readonly newPerformance: number;
  readonly read: number;
}

/**
 * The monitoring part of `sluice backfill`: drift records and FINAL performance records of the
 * windows starting in the range, recomputed by the stages' code from predictions.<model> and the
 * label topics, into the offline store. Rows the stages' sink wrote already (same natural key) are
 * skipped. PROVISIONAL performance records are not recomputed: which ones exist depends on how
 * fast labels arrived, not on the topics. Undefined when the range is not in event time.
 */
export async function backfillMonitoring(
  context: CommandContext,
  cluster: Cluster,
  topology: Topology,
  store: OfflineStore,
  range: EventRange,
): Promise<MonitoringBackfill | undefined> {
  const windows = monitoringWindows(range);
  if (!windows) return undefined;
  if (topology.models.length === 0) return { drift: 0, newDrift: 0, performance: 0, newPerformance: 0, read: 0 };
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-backfill', logger: context.logger });
  const replay = await replayMonitoring(await monitoringReplayOptions(context, cluster, topology, kafka, windows));
  const tables = offlineTables({ sources: topology.sources, views: topology.views });
  const table = (topic: string): (typeof tables)[number] => {
    const found = tables.find((candidate) => candidate.topic === topic);
    if (!found) throw new Error(`no offline table for ${topic}`);
    return found;
  };
  const driftTable = table('monitoring.drift');
  const performanceTable = table('monitoring.performance');
  await ensureTables(store, [driftTable, performanceTable]);
  const meta = { partition: -1, offset: '-1', timestamp: 0, key: null, headers: {} };
  const finals = replay.performance.filter((record) => record.stage === 'FINAL');
  const newDrift = await insertNew(
    store,
    driftTable,
    replay.drift.map((record) => driftTable.toRow(record as unknown as Record<string, unknown>, meta)),
  );
  const newPerformance = await insertNew(
    store,
    performanceTable,
    finals.map((record) => performanceTable.toRow(record as unknown as Record<string, unknown>, meta)),
  );
  return { drift: replay.drift.length, newDrift, performance: finals.length, newPerformance, read: replay.read };
}

/** One line for `sluice backfill`. */
export function describeMonitoringBackfill(report: MonitoringBackfill | undefined): string {
  if (!report) return 'monitoring: skipped (its records are selected by event time; --record-time and offsets do not apply)';
  return `monitoring: ${report.drift} drift records (${report.newDrift} new), ${report.performance} final performance records (${report.newPerformance} new) from ${report.read} records read`;
}

/** `sluice monitoring check`: drift and performance records the stages wrote vs the same records recomputed by replay; exit 2 on any mismatch. */
export async function monitoringCheckCommand(
  context: CommandContext,
  options: RangeOptions & { readonly json?: boolean },
): Promise<number> {
  const range = rangeOf(options);
  const windows = monitoringWindows(range);
  if (!windows)
    throw new ConfigError(
      'monitoring records are selected by the event time of their window: use --from/--to without --record-time or offsets',
    );
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-check', logger: context.logger });
  const reports = await checkMonitoring(await monitoringReplayOptions(context, cluster, topology, kafka, windows));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(reports)}\n`);
  } else {
    process.stdout.write(`monitoring check (${describeRange(range)}):\n`);
    for (const report of reports)
      process.stdout.write(
        `${report.kind}: ${report.compared} compared, ${report.mismatched} mismatched, ${report.onlyLive} only live, ${report.onlyReplay} only replayed, ${report.duplicatesLive} duplicated — mismatch rate ${report.mismatchRate}\n`,
      );
  }
  return reports.every((report) => report.mismatchRate === 0) ? 0 : 2;
}

/** The episodes in monitoring.alerts: each FIRING with its RESOLVED, if any, by alert id. */
export interface AlertEpisode {
  readonly alert: AlertRecord;
  readonly resolved: AlertRecord | undefined;
}

export function alertEpisodes(records: readonly AlertRecord[]): AlertEpisode[] {
  const episodes = new Map<string, { alert: AlertRecord; resolved: AlertRecord | undefined }>();
  for (const record of records) {
    if (record.state === 'FIRING') {
      if (!episodes.has(record.alert_id)) episodes.set(record.alert_id, { alert: record, resolved: undefined });
    } else {
      const episode = episodes.get(record.alert_id);
      if (episode) episode.resolved = record;
    }
  }
  return [...episodes.values()].sort((left, right) => left.alert.at - right.alert.at);
}

/** `sluice alerts ls`: open alerts (every episode with --all), from monitoring.alerts as committed. */
export async function listAlertsCommand(
  context: CommandContext,
  options: { readonly all?: boolean; readonly json?: boolean },
): Promise<number> {
  const cluster = await findCluster(context.config);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger });
  const topic = `${context.config.topicPrefix}monitoring.alerts`;
  const serde = new AvroSerde(cluster.registryUrl, avroType(loadAvsc('monitoring.alerts')));
  const records: AlertRecord[] = [];
  await readRanges(kafka, topic, await resolveRanges(kafka, topic), async (_partition, message) => {
    if (message.value) records.push((await serde.decode(message.value)) as AlertRecord);
  });
  const episodes = alertEpisodes(records).filter((episode) => options.all === true || episode.resolved === undefined);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(episodes)}\n`);
    return 0;
  }
  if (episodes.length === 0) process.stdout.write(options.all ? 'no alerts\n' : 'no open alerts\n');
  for (const { alert, resolved } of episodes) {
    const state = resolved ? `RESOLVED ${new Date(resolved.at).toISOString()}` : 'FIRING';
    process.stdout.write(
      `${new Date(alert.at).toISOString()}  ${alert.severity}  ${alert.rule}  ${alert.subject}  ${state}  ${alert.message}${alert.action ? `  → ${alert.action}` : ''}  [${alert.alert_id}]\n`,
    );
  }
  return 0;
}
