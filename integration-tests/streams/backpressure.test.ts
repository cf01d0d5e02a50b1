import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { runStage } from '../../streams/runtime/index.js';
import { createTopic, testKafka, uniqueName } from '../helpers.js';

const WAITING = 1_000_000;
const BOUND = 500;
const STEP_MS = 5;
const CONSUME_SECONDS = 60;

/** Live heap after a full collection: what is retained, not garbage waiting to be collected. */
function retainedHeap(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  return process.memoryUsage().heapUsed;
}

describe('backpressure: a slow downstream step against a deep backlog', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  it(`keeps in-flight records at or under ${BOUND}, heap growth under 100 MB, and the consumer in its group for ${CONSUME_SECONDS} s`, async () => {
    const input = uniqueName('backlog');
    const output = uniqueName('backlog-out');
    await createTopic(admin, input, 6);
    await createTopic(admin, output, 6);
    await createTopic(admin, `${input}-dlq`, 1);

    // A million 100-byte records waiting before the stage starts.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const payload = Buffer.alloc(100, 'x');
    for (let start = 0; start < WAITING; start += 10_000) {
      const messages = Array.from({ length: 10_000 }, (_, i) => ({ key: `k${(start + i) % 1_000}`, value: payload }));
      await producer.send({ topic: input, acks: -1, messages });
    }
    await producer.disconnect();

    const metrics = createMetricsRegistry(false);
    let processed = 0;
    const stage = await runStage<Buffer>(
      {
        name: 'slow',
        inputs: [input],
        decode: (raw) => raw.value ?? Buffer.alloc(0),
        process: async (record) => {
          await new Promise((resolve) => setTimeout(resolve, STEP_MS));
          processed++;
          return [{ topic: output, key: record.key, value: record.value.subarray(0, 10) }];
        },
      },
      {
        brokers: inject('brokers'),
        groupId: uniqueName('slow-group'),
        dlqTopic: `${input}-dlq`,
        maxInFlight: BOUND,
        metrics,
        logger: silentLogger(),
      },
    );

    let maxInFlight = 0;
    let everPaused = false;
    let baselineHeap = 0;
    let peakHeap = 0;
    const started = Date.now();
    try {
      while (Date.now() - started < CONSUME_SECONDS * 1000) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const status = stage.status();
        maxInFlight = Math.max(maxInFlight, status.inFlight);
        everPaused ||= status.paused;
        // Once a second; the baseline once the pipeline is full (after 5 s), so start-up is not growth.
        if (Math.floor((Date.now() - started) / 100) % 10 === 0) {
          const heap = retainedHeap();
          if (baselineHeap === 0 && Date.now() - started > 5_000) baselineHeap = heap;
          if (baselineHeap > 0) peakHeap = Math.max(peakHeap, heap);
        }
        expect(status.failed).toBe(false);
      }
      const status = stage.status();
      const rebalances =
        (await metrics.getSingleMetric('sluice_rebalances_total')?.get())?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
      const total = async (name: string) =>
        (await metrics.getSingleMetric(name)?.get())?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
      const admitted = await total('sluice_records_in_total');
      const fetched = await total('sluice_records_fetched_total');
      console.log(
        `processed ${processed} in ${CONSUME_SECONDS} s; max in flight ${maxInFlight}/${BOUND}; heap growth ${((peakHeap - baselineHeap) / 1e6).toFixed(1)} MB; fetched ${fetched}, admitted ${admitted}`,
      );
      // What a fetch brings beyond the bound is held, not fetched again: at most one fetch per
      // partition (1 MiB, about 9,000 of these records) above what was admitted. Fetched again,
      // each fetch of about 9,000 would admit a few hundred.
      expect(admitted).toBeGreaterThanOrEqual(processed);
      expect(fetched - admitted).toBeLessThanOrEqual(6 * 12_000);

      expect(maxInFlight).toBeLessThanOrEqual(BOUND);
      expect(maxInFlight).toBeGreaterThan(BOUND / 2);
      expect(everPaused).toBe(true);
      expect(peakHeap - baselineHeap).toBeLessThan(100 * 1024 * 1024);
      expect(status.joined).toBe(true);
      expect(status.rebalances).toBe(0);
      expect(rebalances).toBe(0);
      // 6 partitions in parallel at 5 ms a record: far fewer than the backlog, so it was waiting all along.
      expect(processed).toBeGreaterThan(1_000);
      expect(processed).toBeLessThan(WAITING);
    } finally {
      await stage.stop();
    }
  });
});
