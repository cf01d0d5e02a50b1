import { spawn } from 'node:child_process';
import type { Admin } from 'kafkajs';
import { PROJECT_ROOT } from '../common/config.js';
import { tieToParent } from '../common/child-tie.js';
import { cpuSecondsOf } from '../common/proc-stat.js';

/** One processor's run over a whole input: its wall seconds and its process's CPU-seconds. */
export interface Measured {
  readonly seconds: number;
  readonly cpuSeconds: number;
}

export interface ProcessorRun {
  /** For the error of a processor that exits before the end. */
  readonly name: string;
  readonly input: string;
  /** The input's record count: the run ends when `group` has committed that many offsets of it. */
  readonly records: number;
  readonly group: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Set in the process's environment besides this one's. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A processor that has not committed the whole input by then has hung: the benchmark fails. */
export const DEADLINE_MS = 15 * 60_000;

/** How often the group's committed offsets are read (an in-process run is timed with the same period). */
export const COMMITTED_POLL_MS = 100;

/** How long a stopped processor has to end before it is killed. */
const STOP_MS = 30_000;

/**
 * Runs one processor as its own process until its group has committed every record of the input,
 * then stops it (SIGTERM). Time and CPU-seconds (from /proc) count from its first committed offset
 * (start-up and the JIT's warm-up left out) and are scaled to the whole input.
 */
export async function runToEnd(admin: Admin, run: ProcessorRun): Promise<Measured> {
  const child = spawn(run.command, run.args, {
    env: { ...process.env, ...run.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: PROJECT_ROOT,
  });
  tieToParent(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ended by itself or by a signal (a signal leaves `exitCode` null).
  const ended = (): boolean => child.exitCode !== null || child.signalCode !== null;
  // The end of its error output, for the errors below (its standard output is not read: a pipe
  // nobody reads would stall a process that prints much).
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  const exitedError = (): Error => new Error(`${run.name} exited (${String(child.exitCode ?? child.signalCode)}): ${stderr}`);
  const committed = async (): Promise<number> => {
    const offsets = await admin.fetchOffsets({ groupId: run.group, topics: [run.input] });
    return offsets[0]?.partitions.reduce((sum, entry) => sum + Math.max(0, Number(entry.offset)), 0) ?? 0;
  };
  try {
    let firstAt: { time: number; cpu: number; records: number } | undefined;
    const deadline = performance.now() + DEADLINE_MS;
    for (;;) {
      if (ended()) throw exitedError();
      if (performance.now() > deadline)
        throw new Error(`${run.name} did not commit the whole input in ${DEADLINE_MS / 60_000} minutes: ${stderr}`);
      const done = await committed();
      if (!firstAt && done > 0) firstAt = { time: performance.now(), cpu: await cpuSecondsOf(child), records: done };
      if (done >= run.records) break;
      await new Promise((resolve) => setTimeout(resolve, COMMITTED_POLL_MS));
    }
    const end = { time: performance.now(), cpu: await cpuSecondsOf(child) };
    // A processor that ended before it was stopped failed (after committing, as a pipe that commits
    // the offsets of a record it then finds undelivered).
    if (ended()) throw exitedError();
    const processed = run.records - (firstAt?.records ?? 0);
    if (!(processed > 0)) throw new Error(`${run.name} committed the whole input before it was first seen: too few records to time`);
    return {
      seconds: ((end.time - (firstAt?.time ?? end.time)) / 1000 / processed) * run.records,
      cpuSeconds: ((end.cpu - (firstAt?.cpu ?? end.cpu)) / processed) * run.records,
    };
  } finally {
    // Stopped, and killed if it does not end within STOP_MS of that.
    if (!ended()) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), STOP_MS)),
      ]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }
}
