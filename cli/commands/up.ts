import { spawn } from 'node:child_process';
import { DEMO_RATE, demoHistory } from '../../app/demo.js';
import { startStack } from '../../app/stack.js';
import { commandTopology } from '../topology.js';
import { assertConfigBindable } from '../../common/auth.js';
import { ConfigError } from '../../common/errors.js';
import type { CommandContext } from '../action.js';

/** How long stopping may take after a service of the stack failed: clients of a dead broker retry for minutes. */
const FAILED_STOP_BOUND_MS = 20_000;
/** How long stopping may take after a signal, the embedded ClickHouse's close at the end included. */
const STOP_BOUND_MS = 90_000;
/** How long the embedded ClickHouse may take to close when a bound ran out. */
const CLOSE_EMBEDDED_MS = 8_000;
/** The most an exit takes once a bound ran out (the kill switch's delay): the bounds fire this much earlier. */
const EXIT_MS = CLOSE_EMBEDDED_MS + 2_000;

/**
 * Ends the process once a bound ran out. The embedded ClickHouse is closed first: an exit with the
 * engine open can hang in its native exit handlers (it did once in CI, past the 90 s bound by
 * minutes). Should it not close in time either, the process kills itself, so that the bound holds
 * whatever the engine does; the broker dies with it (ParentWatch).
 */
async function exitClosingEmbedded(stack: { closeEmbedded(): Promise<void> }, code: number): Promise<never> {
  // A native call that hangs (the engine's close, or an exit handler after it) blocks this event
  // loop, and with it any timer here: the last resort is another process.
  armKillSwitch(EXIT_MS);
  const closed = await Promise.race([
    stack.closeEmbedded().then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), CLOSE_EMBEDDED_MS)),
  ]);
  if (!closed) {
    process.stderr.write(`sluice: the embedded ClickHouse did not close within ${CLOSE_EMBEDDED_MS / 1000} s; killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}

/**
 * SIGKILLs this process after `ms` unless it has ended by then: a shell that waits for its stdin
 * (a pipe from this process) to close, at most `ms`; on the time running out it kills this
 * process, if its parent still is this process (no pid reused). When this process ends first, the
 * pipe closes and the shell ends with it.
 */
function armKillSwitch(ms: number): void {
  const pid = process.pid;
  const script = `timeout ${Math.ceil(ms / 1000)} cat > /dev/null && exit 0; set -- $(cat /proc/$$/stat); [ "$4" = "${pid}" ] && kill -KILL ${pid}`;
  // Its own process group: a Ctrl-C at the terminal does not end it before it has done its job.
  const killer = spawn('/bin/sh', ['-c', script], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  killer.on('error', () => undefined);
  killer.stdin.on('error', () => undefined);
  killer.unref();
}

/**
 * `sluice up`: starts the stack, prints where each service listens, and stays in the foreground
 * until SIGINT/SIGTERM/SIGHUP (then stops everything) or until a service dies (then exits 1).
 */
export interface UpOptions {
  readonly demo?: boolean;
  readonly seed?: string;
  readonly history?: string;
  readonly rate?: string;
  readonly driftAt?: string;
}

function positiveNumber(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${flag} takes a non-negative number, got "${text}"`);
  return value;
}

export async function upCommand({ config, logger }: CommandContext, options: UpOptions = {}): Promise<number> {
  const driftFrom =
    options.driftAt === undefined ? undefined : /^\d+$/.test(options.driftAt) ? Number(options.driftAt) : Date.parse(options.driftAt);
  if (driftFrom !== undefined && !Number.isFinite(driftFrom))
    throw new ConfigError(`--drift-at takes epoch milliseconds or an ISO time, got "${options.driftAt ?? ''}"`);
  assertConfigBindable(config, ['sql', 'registry', 'ops']);
  const rate = positiveNumber(options.rate, DEMO_RATE, '--rate');
  const topology = await commandTopology(config);
  if (options.demo && !topology.demo) throw new ConfigError(`--demo needs a topology with a demo generator; ${topology.file} has none`);
  const stack = await startStack(
    config,
    logger,
    options.demo
      ? {
          topology,
          demo: {
            seed: positiveNumber(options.seed, 42, '--seed'),
            ...demoHistory(rate, options.history === undefined ? undefined : positiveNumber(options.history, 0, '--history')),
            rate,
            ...(driftFrom !== undefined ? { driftFrom } : {}),
            onTrained: (report) => {
              process.stdout.write(
                `model ${report.version.name} v${report.version.version} trained from replayed topics (AUC ${report.evaluation.auc.toFixed(3)} on ${report.testRows} held-out events) and deployed as champion\n`,
              );
              process.stdout.write(`  watch predictions: npx sluice tail predictions.${report.version.name}\n`);
              process.stdout.write(
                `  or in SQL:         npx sluice sql "SELECT model_version, deployment, count(), avg(score) FROM predictions_${report.version.name} GROUP BY ALL"\n`,
              );
            },
          },
        }
      : { topology },
  ).catch((error: unknown) => {
    // Start-up failed part-way: what did start (clients retrying, servers) must not keep the
    // process alive; the error is printed first.
    setTimeout(() => process.exit(1), 2_000).unref();
    throw error;
  });
  const { endpoints, kafkaMode } = stack.state;
  const where = kafkaMode === 'local' ? `local KRaft broker, data in ${config.dataDir}` : 'external cluster (KAFKA_BROKERS)';
  process.stdout.write(
    [
      'sluice is up',
      `  kafka            ${endpoints.kafka}   (${where})`,
      `  schema registry  ${endpoints.schemaRegistry}   (Confluent REST API${config.schemaRegistry.externalUrl ? ', SCHEMA_REGISTRY_URL' : ''})`,
      `  dashboard        ${endpoints.dashboard ?? ''}   (live dataflow, models, quality; open it in a browser)`,
      `  metrics          ${endpoints.metrics}   (Prometheus; /health and /ready beside it)`,
      config.clickhouse.url
        ? `  clickhouse       ${endpoints.clickhouse}   (CLICKHOUSE_URL: the offline store)`
        : `  clickhouse       ${endpoints.clickhouse}   (embedded ClickHouse, HTTP interface${config.sql.writable ? '' : ', read-only'})`,
      `  features         ${endpoints.features}/<view>/<entity>   (online lookups; POST ${endpoints.features} for batches)`,
      `  predict          POST ${endpoints.predict}/<model>   (synchronous predictions)`,
      `  pipeline         ${topology.sources.map((source) => source.name).join(', ')}: ingest → features → ${topology.models.map((model) => `inference-${model.name}`).join(', ') || 'no models'}, fused (${config.stages.guarantee}); sink → ClickHouse`,
      ...(options.demo
        ? ['  demo             generating history and live events; the first model trains once labelled history is in']
        : []),
      'Press Ctrl-C to stop. `sluice status --json` prints these endpoints.',
      '',
    ].join('\n'),
  );

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
  const outcome = await Promise.race([signalled.then((signal) => ({ signal })), stack.failed.then((error) => ({ error }))]);
  if ('error' in outcome) {
    logger.error({ err: outcome.error }, 'a service of the stack stopped');
    process.stderr.write(`sluice: ${outcome.error.message}\n`);
    // What is left may hang on the dead service (clients retrying a gone broker): bounded, and a
    // signal ends it at once.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void exitClosingEmbedded(stack, 1));
    const bound = setTimeout(() => {
      process.stderr.write(`sluice: stopping after the failure took over ${(FAILED_STOP_BOUND_MS - EXIT_MS) / 1000} s; exiting\n`);
      void exitClosingEmbedded(stack, 1);
    }, FAILED_STOP_BOUND_MS - EXIT_MS);
    bound.unref();
    // The embedded ClickHouse first, bounded: the exit may come before the Kafka-bound services
    // stop, and an exit with the engine open can hang in its exit handlers.
    await Promise.race([stack.closeEmbedded(), new Promise((resolve) => setTimeout(resolve, FAILED_STOP_BOUND_MS / 2).unref())]);
    await stack.stop();
    return 1;
  }
  process.stdout.write(`received ${outcome.signal}, stopping…\n`);
  // A second Ctrl-C while stopping forces the exit; the broker then dies with us (ParentWatch).
  process.once('SIGINT', () => void exitClosingEmbedded(stack, 130));
  // Bounded: a stop that hangs (a service gone wrong) still ends; the broker dies with us (ParentWatch).
  const bound = setTimeout(() => {
    process.stderr.write(`sluice: stopping took over ${(STOP_BOUND_MS - EXIT_MS) / 1000} s; exiting\n`);
    void exitClosingEmbedded(stack, 1);
  }, STOP_BOUND_MS - EXIT_MS);
  bound.unref();
  await stack.stop();
  process.stdout.write('stopped\n');
  return 0;
}
