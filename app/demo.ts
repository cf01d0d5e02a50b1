import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../common/errors.js';
import { sleep } from '../common/retry.js';
import { readModelRegistry } from '../models/registry.js';
import type { OfflineStore } from '../offline/index.js';
import type { Topology } from '../topology/index.js';
import { runDemoProducer } from './demo-producer.js';
import { NotEnoughHistoryError, trainModel, type TrainReport } from '../jobs/train.js';

/**
 * The demo that `npm start` runs inside the stack: the generator sends a few hours of history and
 * then live events; once the history is ingested, each model without a champion is trained from
 * the replayed topics and deployed (tried again while labelled history is too thin).
 */
export interface DemoOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly modelsSchemaId: number;
  readonly versions: ReadonlyMap<string, number>;
  readonly artifactsDir: string;
  /** Keeps the generator's position across restarts (`<dataDir>/demo.json`). */
  readonly positionFile?: string;
  /** Its demo generator sends the events; its models are trained once the history is in. */
  readonly topology: Topology;
  readonly store: OfflineStore;
  readonly seed: number;
  readonly historyEvents: number;
  readonly historySpanMs: number;
  readonly rate: number;
  readonly driftFrom?: number;
  readonly logger: Logger;
  readonly onTrained: (report: TrainReport) => void;
}

export interface RunningDemo {
  stop(): Promise<void>;
}

/** The demo's first models train on the history's last 6 hours. */
export const TRAIN_SPAN_MS = 6 * 3_600_000;

/** Live demo events per second unless told otherwise (`--rate`). */
export const DEMO_RATE = 3;

/**
 * The demo's history unless its size is given: 30 hours at the live rate. The first day warms up
 * the hour- and day-long features, the first model trains on the last 6 hours, and live traffic
 * then looks like that training set (the drift reference) until the drift switch, so no drift
 * alert fires without drift. Kept small by the rate: at 3 events/s it is 324,000 events, and the
 * first model is in service about 4 minutes after start on a 2-core machine.
 */
const DEFAULT_HISTORY_MS = 30 * 3_600_000;
/** A history of a given size (`--history N`) covers the past 6 hours, all of it trained on. */
const SIZED_HISTORY_MS = TRAIN_SPAN_MS;

/**
 * How much history the demo sends: `events` over the past 6 hours when given (denser or sparser than
 * live traffic, whose features then differ from the training set's), else 30 hours at the live rate
 * (at the default rate when the live rate is 0).
 */
export function demoHistory(rate: number, events?: number): { historyEvents: number; historySpanMs: number } {
  if (events !== undefined) return { historyEvents: events, historySpanMs: SIZED_HISTORY_MS };
  return { historyEvents: Math.round((rate > 0 ? rate : DEMO_RATE) * (DEFAULT_HISTORY_MS / 1_000)), historySpanMs: DEFAULT_HISTORY_MS };
}

export function startDemo(options: DemoOptions): RunningDemo {
  const abort = new AbortController();
  const progress: { historySent?: Readonly<Record<string, number>>; historyEnd?: number } = {};
  const producing = runDemoProducer({
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    topology: options.topology,
    ...(options.positionFile ? { positionFile: options.positionFile } : {}),
    seed: options.seed,
    historyEvents: options.historyEvents,
    historySpanMs: options.historySpanMs,
    rate: options.rate,
    ...(options.driftFrom !== undefined ? { driftFrom: options.driftFrom } : {}),
    signal: abort.signal,
    logger: options.logger,
    onHistorySent: (counts, end) => {
      progress.historySent = counts;
      progress.historyEnd = end;
    },
  }).catch((error: unknown) => {
    if (!abort.signal.aborted) options.logger.error({ err: error }, `the demo generator stopped: ${errorMessage(error)}`);
  });

  const stopped = (): boolean => abort.signal.aborted;
  const training = (async () => {
    while (!stopped()) {
      await sleep(2_000, abort.signal).catch(() => undefined);
      const historySent = progress.historySent;
      if (stopped() || !historySent) continue;
      // The history is in once the sink has every scored event of it (ingest and features ran first).
      if (!(await historyIngested(options, historySent))) continue;
      let pending = 0;
      for (const model of options.topology.models) {
        const registered = await readModelRegistry({
          kafka: options.kafka,
          topic: `${options.topicPrefix}registry.models`,
          registryUrl: options.registryUrl,
        });
        if (registered.some((version) => version.name === model.name && version.aliases.includes('champion'))) continue;
        pending++;
        try {
          options.onTrained(
            await trainModel({
              kafka: options.kafka,
              topicPrefix: options.topicPrefix,
              registryUrl: options.registryUrl,
              modelsSchemaId: options.modelsSchemaId,
              versions: options.versions,
              artifactsDir: options.artifactsDir,
              model,
              aliases: ['champion'],
              logger: options.logger,
              // The history's last TRAIN_SPAN_MS: its earlier part warms up the day-long features, so
              // the training set (and the drift reference) looks like the live traffic that follows.
              ...(progress.historyEnd !== undefined && options.historySpanMs > TRAIN_SPAN_MS
                ? { range: { eventTime: { from: progress.historyEnd - TRAIN_SPAN_MS, to: progress.historyEnd } } }
                : {}),
            }),
          );
          pending--;
        } catch (error) {
          if (!(error instanceof NotEnoughHistoryError)) throw error;
          options.logger.info(`${error.message}; trying again in 30 s`);
          await sleep(30_000, abort.signal).catch(() => undefined);
        }
      }
      if (pending === 0) return;
    }
  })().catch((error: unknown) => {
    if (!abort.signal.aborted) options.logger.error({ err: error }, `demo training failed: ${errorMessage(error)}`);
  });

  return {
    async stop() {
      abort.abort();
      await producing;
      await training;
    },
  };
}

/** Whether every history event of the models' scored sources is in the offline store. */
async function historyIngested(options: DemoOptions, historySent: Readonly<Record<string, number>>): Promise<boolean> {
  for (const source of new Set(options.topology.models.map((model) => model.source.name))) {
    const [row] = await options.store.query<{ n: string }>(`SELECT count() AS n FROM events_${source}`).catch(() => [{ n: '0' }]);
    if (Number(row?.n ?? 0) < (historySent[source] ?? 0)) return false;
  }
  return true;
}
