import { loadConfig, type SluiceConfig } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { useKafkaSecurity } from '../kafka/client.js';
import { useRegistryToken } from '../schemas/index.js';
import type { Logger } from 'pino';

export interface CommandContext {
  readonly config: SluiceConfig;
  readonly logger: Logger;
}

/**
 * Wraps a command: loads the configuration once, and turns any failure into one clear line on
 * stderr and a non-zero exit code (the stack trace only at debug level).
 */
export function runAction<Args extends unknown[]>(command: (context: CommandContext, ...args: Args) => Promise<number>) {
  // Commander calls actions with the command's arguments, then its options.
  return async (...args: Args): Promise<void> => {
    let logger: Logger | undefined;
    try {
      const config = loadConfig();
      // Every Kafka client of the command authenticates to an external cluster the same way.
      useKafkaSecurity(config.kafka.security);
      // ... and every registration sends the registry's token.
      useRegistryToken(config.auth.registry[0]);
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
