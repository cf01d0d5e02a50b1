import { errorMessage } from '../../common/errors.js';
import { reasonOf } from './errors.js';
import type { OutputRecord, RawRecord } from './record.js';

/** Header names on dead-letter messages (the value and key are the original bytes, untouched). */
export const DLQ_HEADERS = {
  stage: 'sluice.dlq.stage',
  errorClass: 'sluice.dlq.error.class',
  errorCode: 'sluice.dlq.error.code',
  errorMessage: 'sluice.dlq.error.message',
  topic: 'sluice.dlq.topic',
  partition: 'sluice.dlq.partition',
  offset: 'sluice.dlq.offset',
  timestamp: 'sluice.dlq.timestamp',
  attempts: 'sluice.dlq.attempts',
} as const;

/**
 * The dead letter of a record: its original key and value bytes, its original headers, and
 * why and where it failed as `sluice.dlq.*` headers, keyed like the original so that one
 * entity's failures stay in order.
 */
export function deadLetter(dlqTopic: string, stage: string, raw: RawRecord, error: unknown, attempts: number): OutputRecord {
  const message = errorMessage(error).slice(0, 2000);
  return {
    topic: dlqTopic,
    key: raw.key,
    value: raw.value,
    headers: {
      ...raw.headers,
      [DLQ_HEADERS.stage]: stage,
      [DLQ_HEADERS.errorClass]: error instanceof Error ? error.constructor.name : typeof error,
      [DLQ_HEADERS.errorCode]: reasonOf(error),
      [DLQ_HEADERS.errorMessage]: message,
      [DLQ_HEADERS.topic]: raw.topic,
      [DLQ_HEADERS.partition]: String(raw.partition),
      [DLQ_HEADERS.offset]: raw.offset,
      [DLQ_HEADERS.timestamp]: String(raw.timestamp),
      [DLQ_HEADERS.attempts]: String(attempts),
    },
  };
}
