import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import { SluiceError } from '../common/errors.js';

export interface CommandContext {
  readonly config: SluiceConfig;
  readonly logger: Logger;
}

export type Command<Args extends unknown[]> = (context: CommandContext, ...args: Args) => Promise<number>;

/**
 * Wraps a command for commander: loads the command's module only when it runs (so `sluice --help`
 * and the light commands never load Kafka, ClickHouse or onnxruntime), loads the configuration
 * once, and turns any failure into one clear line on stderr and a non-zero exit code (the stack
 * trace only at debug level).
 */
export function runAction<Args extends unknown[]>(load: () => Promise<Command<Args>>) {
  // Commander calls actions with the command's arguments, then its options.
  return async (...args: Args): Promise<void> => {
    let logger: Logger | undefined;
    try {
      const [{ loadConfig }, { createLogger }, command] = await Promise.all([
        import('../common/config.js'),
        import('../common/logger.js'),
        load(),
      ]);
      const config = loadConfig();
      logger = createLogger(config.logLevel);
      const code = await command({ config, logger }, ...args);
      process.exitCode = code;
    } catch (error) {
      process.stderr.write(`sluice: ${describeFailure(error)}\n`);
      logger?.debug({ err: error }, 'command failed');
      process.exitCode = 1;
    }
  };
}

function describeFailure(error: unknown): string {
  if (error instanceof SluiceError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
