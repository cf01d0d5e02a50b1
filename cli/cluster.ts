import path from 'node:path';
import { ConfigError } from '../common/errors.js';
import type { SluiceConfig } from '../common/config.js';
import { runningStack } from '../app/stack-file.js';
import type { StackState } from '../app/stack.js';
import type { OfflineStore } from '../offline/index.js';

/** Where a command finds the cluster: the environment (KAFKA_BROKERS, ...) or the running `sluice up`. */
export interface Cluster {
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly stack: StackState | undefined;
}

export async function findCluster(config: SluiceConfig): Promise<Cluster> {
  const stack = await runningStack(config.dataDir);
  const brokers = config.kafka.externalBrokers ?? stack?.endpoints.kafka.split(',');
  const registryUrl = config.schemaRegistry.externalUrl ?? stack?.endpoints.schemaRegistry;
  if (!brokers || !registryUrl) {
    throw new ConfigError(
      `no cluster to run against: start \`sluice up\` (data directory ${config.dataDir}) or set KAFKA_BROKERS and SCHEMA_REGISTRY_URL`,
    );
  }
  return { brokers, registryUrl, stack };
}

/**
 * The offline store for a job: CLICKHOUSE_URL when set, else the running stack's embedded store
 * through its writer socket in the data directory (chDB allows one process per data directory,
 * and `sluice up` holds it; the socket's folder admits only the directory's owner, so no
 * credential is involved). The ClickHouse client loads only when a job needs it.
 */
export async function offlineStoreFor(config: SluiceConfig, cluster: Cluster): Promise<OfflineStore> {
  const { RemoteOfflineStore, writerSocketPath } = await import('../offline/index.js');
  if (config.clickhouse.url) return new RemoteOfflineStore(config.clickhouse.url);
  if (!cluster.stack)
    throw new ConfigError(`no offline store: start \`sluice up\` (data directory ${config.dataDir}) or set CLICKHOUSE_URL`);
  return new RemoteOfflineStore('http://sluice-writer', { socketPath: writerSocketPath(path.join(config.dataDir, 'clickhouse')) });
}
