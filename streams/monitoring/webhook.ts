import type avro from 'avsc';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import type { MetricsRegistry } from '../../common/metrics.js';
import { retry } from '../../common/retry.js';
import { avroType, loadAvsc, type AvroSerde } from '../../schemas/index.js';
import type { AlertRecord } from '../../monitoring/index.js';
import { ValidationError, type StageDefinition } from '../runtime/index.js';
import { MonitoringError } from './errors.js';
import { monitoringMetrics } from './metrics.js';

/**
 * Alert delivery by webhook: each record of monitoring.alerts POSTed as JSON to a URL, in a
 * consumer group of its own — the alerts stage never waits for it. Connection failures, timeouts,
 * 429 and 5xx answers are retried with exponential backoff and jitter; after the last attempt, or on
 * any other answer, the alert goes to the dead-letter topic with the reason (never lost silently).
 * At least once: a receiver can de-duplicate on `alert_id` and `state` (also in the
 * `X-Sluice-Alert-Id` header).
 */
export interface WebhookOptions {
  readonly url: string;
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  readonly attempts?: number;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly timeoutMs?: number;
}

export const WEBHOOK_STAGE = 'monitoring-alerts-webhook';

class WebhookStatusError extends MonitoringError {
  constructor(status: number, retriable: boolean) {
    super('SLUICE_WEBHOOK_STATUS', `the webhook answered HTTP ${status}`, { retriable, context: { status } });
  }
}

/** POSTs one alert; resolves once the receiver answered 2xx. */
export async function postAlert(url: string, alert: AlertRecord, timeoutMs: number): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sluice-alert-id': `${alert.alert_id}:${alert.state}` },
      body: JSON.stringify(alert),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
  } catch (cause) {
    throw new MonitoringError('SLUICE_WEBHOOK_UNREACHABLE', `the webhook is unreachable: ${errorMessage(cause)}`, {
      cause,
      retriable: true,
    });
  }
  if (response.status < 200 || response.status >= 300)
    throw new WebhookStatusError(response.status, response.status === 429 || response.status >= 500);
}

export function webhookStage(options: WebhookOptions): StageDefinition<AlertRecord> {
  const reader = options.serdeFor(avroType(loadAvsc('monitoring.alerts')));
  const metrics = monitoringMetrics(options.metrics);
  const logger = options.logger.child({ stage: WEBHOOK_STAGE });
  return {
    name: WEBHOOK_STAGE,
    inputs: [`${options.topicPrefix}monitoring.alerts`],
    decode: async (raw) => {
      if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an alert without a value');
      return (await reader.decode(raw.value)) as AlertRecord;
    },
    eventTime: (alert) => alert.at,
    process: async (record) => {
      try {
        await retry(() => postAlert(options.url, record.value, options.timeoutMs ?? 5_000), {
          attempts: options.attempts ?? 6,
          initialDelayMs: options.initialDelayMs ?? 500,
          maxDelayMs: options.maxDelayMs ?? 30_000,
          onRetry: (error, attempt, delayMs) =>
            logger.warn(
              { alert: record.value.alert_id, attempt, delayMs, error: errorMessage(error) },
              'webhook delivery failed; retrying',
            ),
        });
        metrics.webhookDeliveries.inc({ outcome: 'delivered' });
        return [];
      } catch (error) {
        metrics.webhookDeliveries.inc({ outcome: 'failed' });
        // Not retriable for the runtime: the record becomes a dead letter with this reason.
        throw new MonitoringError('SLUICE_WEBHOOK_FAILED', `alert ${record.value.alert_id} not delivered: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    },
  };
}
