import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../common/errors.js';
import { sleep } from '../common/retry.js';
import { readModelRegistry } from '../models/registry.js';
import type { OfflineStore } from '../offline/index.js';
import type { ModelDefinition } from '../topology/models.js';
import { runDemoProducer } from './demo-producer.js';
import { NotEnoughHistoryError, trainModel, type TrainReport } from './train.js';

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
  readonly models: readonly ModelDefinition[];
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

export function startDemo(options: DemoOptions): RunningDemo {
  const abort = new AbortController();
  const progress: { historySent?: Readonly<Record<string, number>> } = {};
  const producing = runDemoProducer({
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    seed: options.seed,
    historyEvents: options.historyEvents,
    historySpanMs: options.historySpanMs,
    rate: options.rate,
    chargebackDelayMs: 10 * 60_000,
    fraudRate: 0.008,
    ...(options.driftFrom !== undefined ? { driftFrom: options.driftFrom } : {}),
    signal: abort.signal,
    logger: options.logger,
    onHistorySent: (counts) => {
      progress.historySent = counts;
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
      // The history is in once the sink has every transaction of it (ingest and features ran first).
      const [row] = await options.store.query<{ n: string }>('SELECT count() AS n FROM events_transactions').catch(() => [{ n: '0' }]);
      if (Number(row?.n ?? 0) < (historySent['raw.transactions'] ?? 0)) continue;
      let pending = 0;
      for (const model of options.models) {
        const registered = await readModelRegistry({ kafka: options.kafka, topic: `${options.topicPrefix}registry.models`, registryUrl: options.registryUrl });
        if (registered.some((version) => version.name === model.name && version.aliases.includes('champion'))) continue;
        pending++;
        try {
          options.onTrained(await trainModel({
            kafka: options.kafka, topicPrefix: options.topicPrefix, registryUrl: options.registryUrl, modelsSchemaId: options.modelsSchemaId,
            versions: options.versions, artifactsDir: options.artifactsDir, model, aliases: ['champion'], logger: options.logger,
          }));
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
