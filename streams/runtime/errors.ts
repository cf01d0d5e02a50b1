import { SluiceError, type SluiceErrorOptions } from '../../common/errors.js';

/** The user's processing function failed on a record (dead-lettered unless retriable). */
export class ProcessingError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_PROCESSING', message, options);
  }
}

/** A record failed a data-quality check. */
export class ValidationError extends SluiceError {
  readonly field: string | undefined;
  readonly check: string;

  constructor(check: string, field: string | undefined, message: string, options: SluiceErrorOptions = {}) {
    super(`SLUICE_VALIDATION_${check}`, message, { ...options, context: { field, check } });
    this.field = field;
    this.check = check;
  }
}

/** A record whose window had closed, under the dead-letter late policy. */
export class LateRecordError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_LATE_RECORD', message, options);
  }
}

/** The stage cannot go on (retries of a transient error exhausted, a fatal broker error). */
export class StageFailedError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_STAGE_FAILED', message, options);
  }
}

/**
 * Transient failures are retried with backoff, never dead-lettered: SluiceErrors marked
 * retriable and kafkajs errors that say so (broker unavailable, timeouts, leader moves).
 */
export function isRetriable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retriable;
  if (typeof error === 'object' && error !== null && 'retriable' in error) return error.retriable === true;
  return false;
}

/** A stable reason for metrics and dead-letter headers: the error's code, else its class. */
export function reasonOf(error: unknown): string {
  if (error instanceof SluiceError) return error.code;
  if (error instanceof Error) return error.name;
  return 'UnknownError';
}

/**
 * A record's processing met a transient failure. Its attempt may already have written state (an
 * entity's window updated in place, a dedup id remembered), so it is not retried in place: the
 * task drops everything uncommitted, restores its stores and reads again from its committed
 * offsets, and the record is processed afresh.
 */
export class RetryFromCommittedError extends SluiceError {
  constructor(
    message: string,
    readonly stage: string,
    readonly position: string,
    options: SluiceErrorOptions = {},
  ) {
    super('SLUICE_RETRY_FROM_COMMITTED', message, options);
  }
}
