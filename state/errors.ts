import { SluiceError, type SluiceErrorOptions } from '../common/errors.js';

/** RocksDB or a store layer failed (open, read, write). */
export class StateStoreError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_STATE_STORE', message, options);
  }
}

/** A changelog record whose value the store's serde cannot read (skipped during restore). */
export class ChangelogDecodeError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_CHANGELOG_DECODE', message, options);
  }
}

/** A task's state folder is held by a live owner: wait, never wipe it. Retriable. */
export class TaskLockedError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_TASK_LOCKED', message, { retriable: true, ...options });
  }
}
