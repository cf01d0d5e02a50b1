import client from 'prom-client';
import type { MetricsRegistry } from '../common/metrics.js';
import { retriedErrorCounts } from './client.js';

/**
 * `sluice_kafka_client_retried_errors_total`: the errors kafkajs retries itself (leader moves,
 * concurrent transaction operations, coordinator loading), which are logged at debug level rather
 * than ERROR. Counted in client.ts without prom-client, so that a CLI command that only talks to
 * Kafka does not load it; read here at each scrape.
 */
const NAME = 'sluice_kafka_client_retried_errors_total';

let counter: client.Counter<'namespace' | 'error'> | undefined;

/** Adds the Kafka client's metrics to a registry (the one /metrics serves). */
export function registerKafkaClientMetrics(registry: MetricsRegistry): void {
  counter ??= new client.Counter({
    name: NAME,
    help: 'Kafka client errors the client retries itself (leader moves, concurrent transaction operations, coordinator loading), by kafkajs component and error type.',
    labelNames: ['namespace', 'error'],
    registers: [],
    collect() {
      this.reset();
      for (const { namespace, error, count } of retriedErrorCounts()) this.inc({ namespace, error }, count);
    },
  });
  if (!registry.getSingleMetric(NAME)) registry.registerMetric(counter);
}
