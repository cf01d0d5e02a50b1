import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PrerequisiteError } from './errors.js';

const run = promisify(execFile);

const ALTERNATIVES =
  'or set KAFKA_BROKERS=host:port to use an existing Kafka cluster, or run `docker compose up` where a Docker engine exists';

export const MIN_JAVA_MAJOR = 17;

/** Where to find `java`: $JAVA_HOME/bin/java when JAVA_HOME is set, else the PATH. */
export function javaCommand(javaHome: string | undefined): string {
  return javaHome ? path.join(javaHome, 'bin', 'java') : 'java';
}

export function javacCommand(javaHome: string | undefined): string {
  return javaHome ? path.join(javaHome, 'bin', 'javac') : 'javac';
}

/** Parses the major version out of `java -version` output (`"17.0.15"`, `"1.8.0_392"`, `"21"`). */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first;
}

/** Fails at once, with what to install, unless a Java 17+ runtime and compiler are present. */
export async function checkJava(javaHome: string | undefined): Promise<number> {
  const java = javaCommand(javaHome);
  let output: string;
  try {
    const { stdout, stderr } = await run(java, ['-version']);
    output = `${stderr}${stdout}`;
  } catch (cause) {
    throw new PrerequisiteError(
      `Java ${MIN_JAVA_MAJOR}+ is required to run the local Kafka broker but \`${java}\` was not found: install a JDK ${MIN_JAVA_MAJOR}+ (e.g. apt-get install openjdk-17-jdk-headless), ${ALTERNATIVES}`,
      { cause },
    );
  }
  const major = parseJavaMajor(output);
  if (major === undefined || major < MIN_JAVA_MAJOR) {
    throw new PrerequisiteError(
      `Java ${MIN_JAVA_MAJOR}+ is required to run the local Kafka broker but \`${java}\` is version ${major ?? 'unknown'}: install a JDK ${MIN_JAVA_MAJOR}+, ${ALTERNATIVES}`,
    );
  }
  return major;
}

/** Fails at once unless `javac` exists (the broker's parent-watch launcher is compiled once). */
export async function checkJavac(javaHome: string | undefined): Promise<void> {
  const javac = javacCommand(javaHome);
  try {
    await run(javac, ['-version']);
  } catch (cause) {
    throw new PrerequisiteError(
      `a Java ${MIN_JAVA_MAJOR}+ JDK (with javac) is required to prepare the local Kafka broker but \`${javac}\` was not found: install a JDK, ${ALTERNATIVES}`,
      { cause },
    );
  }
}

/** Fails at once unless Maven is on the PATH (needed only while the broker's jars are not cached). */
export async function checkMaven(): Promise<void> {
  try {
    await run('mvn', ['--version']);
  } catch (cause) {
    throw new PrerequisiteError(
      `Maven is required to fetch the Kafka broker's jars from Maven Central but \`mvn\` was not found: install Maven (e.g. apt-get install maven), ${ALTERNATIVES}`,
      { cause },
    );
  }
}
