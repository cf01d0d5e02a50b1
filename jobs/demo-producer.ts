import kafkajs, { type Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { sleep } from '../common/retry.js';
import { demoEvents, type DemoRecord } from './demo-data.js';

const { Partitioners } = kafkajs;

/**
 * Sends demo events to the raw.* topics as JSON (as a user's producer would): first a burst of
 * history (event times spread over the past `historySpanMs`), then live events at `rate` per
 * second, each sent when its event time comes — chargebacks too, so labels arrive late, as in life.
 */
export interface DemoProducerOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly seed: number;
  readonly historyEvents: number;
  readonly historySpanMs: number;
  /** Live events per second (0: history only). */
  readonly rate: number;
  readonly chargebackDelayMs?: number;
  readonly fraudRate?: number;
  /** Event time from which amounts shift and merchants are new. */
  readonly driftFrom?: number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly onHistorySent?: (counts: Readonly<Record<string, number>>) => void;
}

export async function runDemoProducer(options: DemoProducerOptions): Promise<void> {
  const stopped = (): boolean => options.signal.aborted;
  const producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const send = async (records: readonly DemoRecord[]): Promise<void> => {
    if (records.length === 0) return;
    const topics = [...new Set(records.map((record) => record.topic))];
    await producer.sendBatch({
      acks: -1,
      topicMessages: topics.map((topic) => ({
        topic: `${options.topicPrefix}${topic}`,
        messages: records.filter((record) => record.topic === topic).map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
      })),
    });
  };
  try {
    const start = Date.now();
    const common = {
      ...(options.chargebackDelayMs !== undefined ? { chargebackDelayMs: options.chargebackDelayMs } : {}),
      ...(options.fraudRate !== undefined ? { fraudRate: options.fraudRate } : {}),
      ...(options.driftFrom !== undefined ? { driftFrom: options.driftFrom } : {}),
    };
    const counts: Record<string, number> = {};
    let batch: DemoRecord[] = [];
    for (const record of demoEvents({ ...common, seed: options.seed, events: options.historyEvents, end: start, spanMs: options.historySpanMs })) {
      counts[record.topic] = (counts[record.topic] ?? 0) + 1;
      batch.push(record);
      if (batch.length >= 2_000) {
        await send(batch);
        batch = [];
      }
    }
    await send(batch);
    options.onHistorySent?.(counts);
    options.logger.info({ counts }, 'demo history sent');
    if (options.rate <= 0) return;

    // Live: a day's worth of events at the rate, each sent when its event time comes.
    const day = 86_400_000;
    const live = demoEvents({ ...common, seed: options.seed + 1, events: Math.ceil(options.rate * 86_400), end: start + day, spanMs: day, includeFutureChargebacks: true });
    let pending: DemoRecord[] = [];
    for (const record of live) {
      if (options.signal.aborted) break;
      const due = record.value.timestamp as number;
      if (due > Date.now()) {
        await send(pending);
        pending = [];
        await sleep(Math.min(due - Date.now(), 1_000), options.signal).catch(() => undefined);
        if (stopped()) break;
      }
      pending.push(record);
      if (pending.length >= 500) {
        await send(pending);
        pending = [];
      }
    }
    if (!options.signal.aborted) await send(pending);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}
