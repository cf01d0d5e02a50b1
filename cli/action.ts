import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import { SluiceError } from '../common/errors.js';

/** What a command that only reads files and asks services needs. */
export interface ConfigContext {
  readonly config: SluiceConfig;
}

/** What a command that runs Kafka clients, stages or jobs needs: also the process's logger. */
export interface CommandContext extends ConfigContext {
  readonly logger: Logger;
}

type Command<C, Args extends unknown[]> = (context: C, ...args: Args) => Promise<number>;

/**
 * Wraps a command for commander: loads the command's module only when it runs (so `sluice --help`
 * and the light commands never load Kafka, ClickHouse or onnxruntime), loads the configuration
 * once, and turns any failure into one clear line on stderr and a non-zero exit code (the stack
 * trace only at debug level).
 */
export function runAction<Args extends unknown[]>(load: () => Promise<Command<CommandContext, Args>>) {
  return wrap(load, async (config) => {
    const { createLogger } = await import('../common/logger.js');
    return { config, logger: createLogger(config.logLevel) };
  });
}

/** As runAction, for commands that log nothing (status, sql, lookups): no logger is loaded, so they start sooner. */
export function runQuickAction<Args extends unknown[]>(load: () => Promise<Command<ConfigContext, Args>>) {
  return wrap(load, (config) => Promise.resolve({ config }));
}

function wrap<C extends ConfigContext, Args extends unknown[]>(
  load: () => Promise<Command<C, Args>>,
  contextFor: (config: SluiceConfig) => Promise<C>,
) {
  // Commander calls actions with the command's arguments, then its options.
  return async (...args: Args): Promise<void> => {
    let context: C | undefined;
    try {
      const [{ loadConfig }, { useRegistryToken }, command] = await Promise.all([
        import('../common/config.js'),
        import('../schemas/registry-client.js'),
        load(),
      ]);
      const config = loadConfig();
      // Every Kafka client of the command authenticates to an external cluster the same way (kafkajs
      // loads here only when there is security to set: the light commands never need it) ...
      if (config.kafka.security) (await import('../kafka/client.js')).useKafkaSecurity(config.kafka.security);
      // ... and every registration sends the registry's token.
      useRegistryToken(config.auth.registry[0]);
      context = await contextFor(config);
      process.exitCode = await command(context, ...args);
    } catch (error) {
      process.stderr.write(`sluice: ${describeFailure(error)}\n`);
      if (context && 'logger' in context) (context.logger as Logger).debug({ err: error }, 'command failed');
      process.exitCode = 1;
    }
  };
}

function describeFailure(error: unknown): string {
  if (error instanceof SluiceError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
