import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { BrokerPortTakenError, BrokerStartError } from './errors.js';
import { choosePort, LOOPBACK } from '../common/ports.js';
import { readJsonFile, writeJsonFile } from '../common/files.js';
import { waitForGroupCoordinator, waitForKafka } from './client.js';
import { LAUNCHER_CLASS, type KafkaDistribution } from './jars.js';
import { javaCommand } from './prerequisites.js';

const run = promisify(execFile);

export interface LocalBrokerOptions {
  /** The broker's own folder (config, logs, data); created by the caller. */
  readonly dir: string;
  readonly distribution: KafkaDistribution;
  readonly javaHome: string | undefined;
  /** 0 picks a free port (the previous one when still free). */
  readonly port: number;
  readonly controllerPort: number;
  readonly heap: string;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** Broker settings added to (or overriding) sluice's defaults. */
  readonly extraProperties?: Readonly<Record<string, string | number>>;
  readonly logger: Logger;
}

export interface LocalBroker {
  /** Bootstrap servers, `127.0.0.1:port`. */
  readonly brokers: readonly string[];
  readonly pid: number;
  readonly clusterId: string;
  /** Resolves with the exit code when the JVM ends, for whatever reason. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (a controlled shutdown), then SIGKILL after stopTimeoutMs. */
  stop(): Promise<void>;
}

interface SavedPorts {
  readonly port: number;
  readonly controllerPort: number;
}

/**
 * Starts a single-node KRaft broker+controller as a child JVM with its data under `dir`, and
 * resolves once it answers metadata requests. The JVM watches its stdin pipe and exits when this
 * process dies (see ParentWatch.java), so it never outlives us.
 */
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  // A port found free can be taken by another process before the JVM binds it (other brokers
  // start on this machine too): then choose again, unless the port was configured.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (!(error instanceof BrokerPortTakenError) || attempt >= 3 || options.port !== 0) throw error;
      options.logger.warn({ err: error, attempt }, 'a port chosen for the local broker was taken before it bound; choosing again');
    }
  }
}

async function startOnce(options: LocalBrokerOptions): Promise<LocalBroker> {
  const { dir, logger } = options;
  const configDir = path.join(dir, 'config');
  const logDir = path.join(dir, 'logs');
  const dataDir = path.join(dir, 'data');
  await Promise.all([configDir, logDir, dataDir].map((folder) => fs.mkdir(folder, { recursive: true })));

  const saved = await readJsonFile<SavedPorts>(path.join(dir, 'ports.json'));
  const port = await choosePort(options.port, saved?.port, 'SLUICE_KAFKA_PORT');
  const controllerPort = await choosePort(options.controllerPort, saved?.controllerPort, 'SLUICE_KAFKA_CONTROLLER_PORT', [port]);

  const serverProperties = path.join(configDir, 'server.properties');
  const log4jProperties = path.join(configDir, 'log4j2.properties');
  await fs.writeFile(serverProperties, renderServerProperties({ port, controllerPort, dataDir }, options.extraProperties));
  await fs.writeFile(log4jProperties, renderLog4j(logDir));

  const clusterId = await ensureFormatted(options, serverProperties, log4jProperties, dataDir);
  const child = spawnBroker(options, serverProperties, log4jProperties);
  const output = new OutputTail(40);
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const life = { running: true };
  void exited.then(() => {
    life.running = false;
  });
  const killOnExit = (): void => {
    if (life.running) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const brokers = [`${LOOPBACK}:${port}`];
  try {
    const answered = await waitForKafka(brokers, options.startTimeoutMs, () => life.running);
    // Another process's broker on the port answers too: only our cluster id is ours.
    if (answered.clusterId !== clusterId) {
      throw new BrokerPortTakenError(`port ${port} is answered by another Kafka cluster (${answered.clusterId}), not ours (${clusterId})`, {
        context: { port, controllerPort, dir },
      });
    }
    // Ready means consumer groups work too: a fresh broker creates __consumer_offsets on demand.
    await waitForGroupCoordinator(brokers, options.startTimeoutMs);
  } catch (cause) {
    child.kill('SIGKILL');
    await exited;
    process.removeListener('exit', killOnExit);
    if (cause instanceof BrokerPortTakenError) throw cause;
    if (/Address already in use/i.test(output.text())) {
      throw new BrokerPortTakenError(`port ${port} or ${controllerPort} was taken before the local broker bound it`, {
        cause,
        context: { port, controllerPort, dir },
      });
    }
    const why = life.running ? `did not answer within ${options.startTimeoutMs} ms` : 'exited during start-up';
    throw new BrokerStartError(`the local Kafka broker ${why}; its last output: ${output.text() || '(none)'} (logs in ${logDir})`, {
      cause,
      context: { port, controllerPort, dir },
    });
  }
  await writeJsonFile(path.join(dir, 'ports.json'), { port, controllerPort } satisfies SavedPorts);
  logger.info({ brokers, pid: child.pid, dir }, 'local Kafka broker ready');

  const stop = async (): Promise<void> => {
    if (life.running) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        logger.warn({ pid: child.pid, stopTimeoutMs: options.stopTimeoutMs }, 'broker did not stop in time; killing it');
        child.kill('SIGKILL');
      }, options.stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', killOnExit);
  };
  return { brokers, pid: child.pid ?? -1, clusterId, exited, stop };
}

function spawnBroker(options: LocalBrokerOptions, serverProperties: string, log4jProperties: string): ChildProcess {
  const args = [
    `-Xms${options.heap}`,
    `-Xmx${options.heap}`,
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jProperties}`,
    `-Dsluice.shutdown.grace.ms=${options.stopTimeoutMs}`,
    '-cp',
    options.distribution.classpath.join(path.delimiter),
    LAUNCHER_CLASS,
    'kafka.Kafka',
    serverProperties,
  ];
  // stdin stays an open pipe that we never write: its end-of-file tells the JVM we are gone.
  // Its own process group: a terminal's Ctrl-C reaches sluice, which stops the stages before the broker;
  // ParentWatch still ends the broker when sluice dies.
  return spawn(javaCommand(options.javaHome), args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** Formats KRaft storage on first start; returns the cluster id (kept in the data's meta.properties). */
async function ensureFormatted(
  options: LocalBrokerOptions,
  serverProperties: string,
  log4jProperties: string,
  dataDir: string,
): Promise<string> {
  const meta = path.join(dataDir, 'meta.properties');
  if (existsSync(meta)) {
    const match = /^cluster\.id=(.+)$/m.exec(await fs.readFile(meta, 'utf8'));
    if (match?.[1]) return match[1].trim();
  }
  const clusterId = Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url');
  try {
    await run(javaCommand(options.javaHome), [
      `-Dlog4j2.configurationFile=${log4jProperties}`,
      '-cp',
      options.distribution.classpath.join(path.delimiter),
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      `--cluster-id=${clusterId}`,
      '--config',
      serverProperties,
    ]);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new BrokerStartError(`formatting the broker's KRaft storage in ${dataDir} failed: ${detail}`, { cause });
  }
  options.logger.info({ clusterId, dataDir }, 'formatted KRaft storage');
  return clusterId;
}

interface BrokerLayout {
  readonly port: number;
  readonly controllerPort: number;
  readonly dataDir: string;
}

export function renderServerProperties(layout: BrokerLayout, extra: Readonly<Record<string, string | number>> = {}): string {
  const settings: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${LOOPBACK}:${layout.controllerPort}`,
    listeners: `PLAINTEXT://${LOOPBACK}:${layout.port},CONTROLLER://${LOOPBACK}:${layout.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${layout.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': layout.dataDir,
    // One node: every internal topic has one replica.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 12,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 12,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Topics are declared (see topology/topics.ts), never created by a typo in a producer.
    'auto.create.topics.enable': 'false',
    'num.partitions': 6,
    'log.retention.hours': 168,
    'log.segment.bytes': 256 * 1024 * 1024,
    'num.network.threads': 3,
    'num.io.threads': 4,
    // The log cleaner compacts the stores' changelogs, on the machine that runs the stages. Left
    // unthrottled, its first pass (the six changelog partitions of the features' entities rolling
    // their first 256 MiB segments together, about six minutes into `npm run bench -- pipeline
    // --rss`) took about a core for 5–9 s, with the JIT compiling it, and the pipeline fell 2–5 s
    // behind. Throttled to 64 MiB/s of reads and writes, the same pass took about a minute at under
    // a tenth of a core (the changelogs grew by about 4.4 MB/s in those runs).
    'log.cleaner.io.max.bytes.per.second': 64 * 1024 * 1024,
    // Every new segment's offset and time indexes are created sparse at this size and memory-mapped.
    // At the default 10 MiB, three of twelve `--live=5000` runs (each the third or later set of
    // topics on one broker) stalled to p99 1.4–2.9 s while the broker's request threads took about a
    // core for about 3 s; `perf` put that time in page faults on memory-mapped files, read ahead and
    // zero-filled on ext4, which we take to be the new topics' indexes. A 256 MiB segment needs at
    // most 512 KiB of offset index and 768 KiB of time index at the default
    // `log.index.interval.bytes` of 4,096 (and Kafka rolls a segment whose index is full); at 1 MiB,
    // none of thirteen runs at 5,000/s stalled (p99 243–385 ms).
    'log.index.size.max.bytes': 1024 * 1024,
    ...extra,
  };
  const body = Object.entries(settings)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
  return `# Written by sluice on every start of the local broker (infra/kafka/broker.ts).\n${body}\n`;
}

function renderLog4j(logDir: string): string {
  return [
    'status = warn',
    'appender.file.type = RollingFile',
    'appender.file.name = file',
    `appender.file.fileName = ${path.join(logDir, 'server.log')}`,
    `appender.file.filePattern = ${path.join(logDir, 'server.log.%i')}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'appender.file.policies.type = Policies',
    'appender.file.policies.size.type = SizeBasedTriggeringPolicy',
    'appender.file.policies.size.size = 20MB',
    'appender.file.strategy.type = DefaultRolloverStrategy',
    'appender.file.strategy.max = 3',
    'appender.err.type = Console',
    'appender.err.name = err',
    'appender.err.target = SYSTEM_ERR',
    'appender.err.layout.type = PatternLayout',
    'appender.err.layout.pattern = %p %m%n',
    'appender.err.filter.threshold.type = ThresholdFilter',
    'appender.err.filter.threshold.level = error',
    'rootLogger.level = info',
    'rootLogger.appenderRef.file.ref = file',
    'rootLogger.appenderRef.err.ref = err',
    '',
  ].join('\n');
}

/** The last lines a child printed, for error messages. */
class OutputTail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      this.lines.push(line.trim());
      if (this.lines.length > this.max) this.lines.shift();
    }
  }

  text(): string {
    return this.lines.slice(-8).join(' | ');
  }
}
