import type { Kafka } from 'kafkajs';
import type { DemoRecord } from '../../examples/fraud/generator.js';
import { toOnnx, type ScoringNetwork } from '../../models/network.js';
import { baselineOf, registerModelVersion, type ArtifactStore, type RegistryOptions } from '../../models/registry.js';
import type { DemoSetup } from '../pipeline/demo-setup.js';

/** Registers a network over the demo's inputs as a new version of `fraud` (no alias); its number. */
export async function registerNetwork(
  setup: DemoSetup,
  artifacts: ArtifactStore,
  registry: RegistryOptions,
  network: ScoringNetwork,
  run: string,
): Promise<number> {
  const sha = await artifacts.put(toOnnx(network, 'fraud'), {
    name: 'fraud',
    inputs: setup.inputs,
    fill: [...network.mean],
    threshold: 0.5,
    trainer: 'fixed',
    metrics: {},
    baseline: Object.fromEntries(setup.inputs.map((input) => [input, baselineOf([])])),
  });
  return (
    await registerModelVersion(registry, {
      name: 'fraud',
      artifact_sha256: sha,
      trainer: 'fixed',
      params: {},
      metrics: {},
      dataset: { ranges: [], feature_versions: Object.fromEntries(setup.versions) },
      code_commit: null,
      run_id: run,
      created_at: Date.now(),
    })
  ).version;
}

/**
 * Produces demo records as JSON to `<prefix><topic>` in slices, `pauseMs` apart (traffic that keeps
 * flowing while a rollout changes); returns how many transactions it sent.
 */
export async function produceDemo(
  kafka: Kafka,
  prefix: string,
  records: readonly DemoRecord[],
  slice = 5_000,
  pauseMs = 0,
): Promise<number> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = 0; start < records.length; start += slice) {
    const part = records.slice(start, start + slice);
    const topics = [...new Set(part.map((record) => record.topic))];
    await producer.sendBatch({
      acks: -1,
      topicMessages: topics.map((topic) => ({
        topic: `${prefix}${topic}`,
        messages: part
          .filter((record) => record.topic === topic)
          .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
      })),
    });
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  await producer.disconnect();
  return records.filter((record) => record.topic === 'raw.transactions').length;
}
