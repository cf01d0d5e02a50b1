import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { KafkaFetchError } from './errors.js';
import { checkJavac, checkMaven, javacCommand } from './prerequisites.js';

const run = promisify(execFile);

const POM = fileURLToPath(new URL('./pom.xml', import.meta.url));
const LAUNCHER_SOURCE = fileURLToPath(new URL('./ParentWatch.java', import.meta.url));
export const LAUNCHER_CLASS = 'dev.sluice.infra.ParentWatch';

export interface KafkaDistribution {
  readonly version: string;
  /** Java classpath entries: the broker's jars and the compiled launcher. */
  readonly classpath: readonly string[];
}

export interface FetchOptions {
  readonly cacheDir: string;
  readonly version: string;
  readonly javaHome: string | undefined;
  readonly logger: Logger;
}

/**
 * Makes sure the broker's jars (fetched with Maven from Maven Central) and the parent-watch
 * launcher (compiled with javac) are in the cache, fetching and compiling only what is missing.
 * Each piece is built in a temporary folder and renamed into place, so an interrupted or
 * concurrent fetch never leaves a half-filled cache behind.
 */
export async function ensureKafkaDistribution(options: FetchOptions): Promise<KafkaDistribution> {
  const root = path.join(options.cacheDir, 'kafka', options.version);
  const libs = path.join(root, 'libs');
  if (!existsSync(libs)) await fetchJars(options, root);
  const launcher = await ensureLauncher(options, root);
  return { version: options.version, classpath: [path.join(libs, '*'), launcher] };
}

async function fetchJars(options: FetchOptions, root: string): Promise<void> {
  await checkMaven();
  options.logger.info({ version: options.version }, 'fetching the Kafka broker jars with Maven (first run only)');
  const staging = await stagingDir(root);
  const started = Date.now();
  try {
    await run(
      'mvn',
      [
        '-B',
        '-q',
        '-f',
        POM,
        `-Dkafka.version=${options.version}`,
        'dependency:copy-dependencies',
        `-DoutputDirectory=${staging}`,
        '-DincludeScope=runtime',
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (cause) {
    await fs.rm(staging, { recursive: true, force: true });
    const output = cause instanceof Error && 'stdout' in cause ? String((cause as { stdout: unknown }).stdout) : '';
    throw new KafkaFetchError(
      `could not fetch Apache Kafka ${options.version} (org.apache.kafka:kafka_2.13) with Maven: ${lastLines(output, 5)}`,
      { cause, context: { version: options.version } },
    );
  }
  const jars = (await fs.readdir(staging)).filter((name) => name.endsWith('.jar'));
  if (!jars.some((name) => name.startsWith(`kafka_2.13-${options.version}`))) {
    await fs.rm(staging, { recursive: true, force: true });
    throw new KafkaFetchError(`Maven finished but kafka_2.13-${options.version}.jar is not among the fetched jars`);
  }
  await fs.mkdir(root, { recursive: true });
  await moveIntoPlace(staging, path.join(root, 'libs'));
  options.logger.info({ version: options.version, jars: jars.length, seconds: (Date.now() - started) / 1000 }, 'Kafka jars cached');
}

async function ensureLauncher(options: FetchOptions, root: string): Promise<string> {
  const source = await fs.readFile(LAUNCHER_SOURCE);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = path.join(root, `launcher-${digest}`);
  if (existsSync(dir)) return dir;
  await checkJavac(options.javaHome);
  const staging = await stagingDir(root);
  try {
    await run(javacCommand(options.javaHome), ['-d', staging, '--release', '17', LAUNCHER_SOURCE]);
  } catch (cause) {
    await fs.rm(staging, { recursive: true, force: true });
    throw new KafkaFetchError(`could not compile the broker launcher ${LAUNCHER_SOURCE}`, { cause });
  }
  await moveIntoPlace(staging, dir);
  return dir;
}

async function stagingDir(root: string): Promise<string> {
  const dir = path.join(path.dirname(root), `.staging-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/** Renames staging to target; if another process got there first, keeps theirs. */
async function moveIntoPlace(staging: string, target: string): Promise<void> {
  try {
    await fs.rename(staging, target);
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
}

function lastLines(text: string, count: number): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '');
  return lines.slice(-count).join(' | ') || 'no output';
}
