/**
 * The one error taxonomy of sluice: every error carries a stable `code`, says whether retrying
 * can help (`retriable`), and keeps its `cause`. Each folder subclasses it in its own errors.ts.
 */
export interface SluiceErrorOptions {
  readonly cause?: unknown;
  readonly retriable?: boolean;
  readonly context?: Readonly<Record<string, unknown>>;
}

export class SluiceError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = Object.freeze({ ...(options.context ?? {}) });
  }
}

/** Configuration that does not parse, or names something that cannot be used. */
export class ConfigError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_CONFIG', message, options);
  }
}

/** The message of any thrown value, for logs and one-line reports. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** A port the configuration asks for is already taken by another process. */
export class PortInUseError extends SluiceError {
  constructor(port: number, setting: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_PORT_IN_USE', `port ${port} on 127.0.0.1 is already in use (${setting}); free it or choose another port`, {
      ...options,
      context: { port, setting },
    });
  }
}

/** The data directory cannot be created or written. */
export class DataDirError extends SluiceError {
  constructor(dir: string, options: SluiceErrorOptions = {}) {
    const reason = options.cause instanceof Error ? `: ${options.cause.message}` : '';
    super('SLUICE_DATA_DIR', `data directory ${dir} is not writable${reason} (set SLUICE_DATA_DIR to a writable folder)`, {
      ...options,
      context: { dir },
    });
  }
}

/** A `/proc/<pid>/stat` that does not read as the kernel writes it, or that cannot be read for a reason other than the process being gone. */
export class ProcStatError extends SluiceError {
  constructor(pid: number | undefined, message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_PROC_STAT', message, { ...options, context: { pid } });
  }
}
