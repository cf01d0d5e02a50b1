import { SluiceError, type SluiceErrorOptions } from '../../common/errors.js';

/** A monitoring stage could not do its work for a record: retriable ones are retried by the runtime, the rest dead-lettered. */
export class MonitoringError extends SluiceError {
  constructor(code: string, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, options);
  }
}
