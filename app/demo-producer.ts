import kafkajs, { type Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { readJsonFile, writeJsonFile } from '../common/files.js';
import { sleep } from '../common/retry.js';
import { sourceNamed, type DemoRecord, type Topology } from '../topology/index.js';

const { Partitioners } = kafkajs;

/**
 * Sends a topology's demo events to the raw.* topics as JSON (as a user's producer would): first
 * a burst of history (event times spread over the past `historySpanMs`), then live events at
 * `rate` per second, each sent when its event time comes — late labels too, as in life.
 */
export interface DemoProducerOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  /** Whose demo generator makes the events. */
  readonly topology: Topology;
  readonly seed: number;
  readonly historyEvents: number;
  readonly historySpanMs: number;
  /** Live events per second (0: history only). */
  readonly rate: number;
  /** Event time from which amounts shift and merchants are new. */
  readonly driftFrom?: number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Called once the history is in Kafka, with its counts per source and its end (event time: live begins there). */
  readonly onHistorySent?: (counts: Readonly<Record<string, number>>, end: number) => void;
  /** A JSON file keeping the producer's position across restarts (in the data directory). */
  readonly positionFile?: string;
}

/** Where the demo producer is, kept in the data directory so a restart continues instead of re-sending. */
interface DemoPosition {
  readonly seed: number;
  /** Wall-clock start of the first run: history ends and live begins here, on every restart. */
  readonly start: number;
  readonly historySent: boolean;
  /** History records sent per source. */
  readonly historyCounts: Readonly<Record<string, number>>;
  /** Live records sent so far (the generator is deterministic: a restart skips them). */
  readonly liveSent: number;
}

export async function runDemoProducer(options: DemoProducerOptions): Promise<void> {
  const { demo } = options.topology;
  if (!demo) throw new Error(`topology ${options.topology.name} has no demo generator`);
  const stopped = (): boolean => options.signal.aborted;
  const producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const send = async (records: readonly DemoRecord[]): Promise<void> => {
    if (records.length === 0) return;
    const sources = [...new Set(records.map((record) => record.source))];
    await producer.sendBatch({
      acks: -1,
      topicMessages: sources.map((source) => ({
        topic: `${options.topicPrefix}raw.${source}`,
        messages: records
          .filter((record) => record.source === source)
          .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
      })),
    });
  };
  const eventTime = (record: DemoRecord): number => Number(record.value[sourceNamed(options.topology, record.source).eventTimeField]);
  const saved = options.positionFile ? await readJsonFile<DemoPosition>(options.positionFile) : undefined;
  let position: DemoPosition =
    saved?.seed === options.seed ? saved : { seed: options.seed, start: Date.now(), historySent: false, historyCounts: {}, liveSent: 0 };
  const save = async (next: DemoPosition): Promise<void> => {
    position = next;
    if (options.positionFile) await writeJsonFile(options.positionFile, position);
  };
  // The start is kept before anything is sent: a run interrupted inside the history burst re-sends
  // it with the same event times (so ingest's dedup by event id and time drops the repeats).
  if (position !== saved) await save(position);
  try {
    const drift = options.driftFrom !== undefined ? { driftFrom: options.driftFrom } : {};
    if (!position.historySent) {
      // Re-sent whole after an interrupted first run: same ids and times, so ingest drops the repeats.
      const counts: Record<string, number> = {};
      let batch: DemoRecord[] = [];
      for (const record of demo.generate({
        ...drift,
        seed: options.seed,
        events: options.historyEvents,
        end: position.start,
        spanMs: options.historySpanMs,
        live: false,
      })) {
        if (stopped()) return;
        counts[record.source] = (counts[record.source] ?? 0) + 1;
        batch.push(record);
        if (batch.length >= 2_000) {
          await send(batch);
          batch = [];
        }
      }
      await send(batch);
      await save({ ...position, historySent: true, historyCounts: counts });
      options.logger.info({ counts }, 'demo history sent');
    } else {
      options.logger.info(
        { counts: position.historyCounts, liveSent: position.liveSent },
        'demo history was sent before; continuing the live events',
      );
    }
    options.onHistorySent?.(position.historyCounts, position.start);
    if (options.rate <= 0) return;

    // Live: a day's worth of events at the rate, each sent when its event time comes.
    const day = 86_400_000;
    const live = demo.generate({
      ...drift,
      seed: options.seed + 1,
      events: Math.ceil(options.rate * 86_400),
      end: position.start + day,
      spanMs: day,
      live: true,
    });
    let skip = position.liveSent;
    let pending: DemoRecord[] = [];
    const flush = async (): Promise<void> => {
      await send(pending);
      if (pending.length > 0) await save({ ...position, liveSent: position.liveSent + pending.length });
      pending = [];
    };
    for (const record of live) {
      if (stopped()) break;
      if (skip > 0) {
        skip--;
        continue;
      }
      const due = eventTime(record);
      if (due > Date.now()) {
        await flush();
        await sleep(Math.min(due - Date.now(), 1_000), options.signal).catch(() => undefined);
        if (stopped()) break;
      }
      pending.push(record);
      if (pending.length >= 500) await flush();
    }
    if (!stopped()) await flush();
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}
