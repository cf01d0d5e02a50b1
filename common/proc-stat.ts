import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** What sluice reads of a process in `/proc/<pid>/stat` (Linux). */
export interface ProcStat {
  /** The state letter: R running, S sleeping, D disk wait, T stopped, Z zombie (exited, not yet reaped)… */
  readonly state: string;
  /** CPU time spent in user and kernel mode so far, in seconds. */
  readonly cpuSeconds: number;
  /** When the process started, in clock ticks after boot: with the pid, it names one process (a pid is reused). */
  readonly startTime: string;
}

/** Clock ticks per second of the times in `/proc/<pid>/stat` (USER_HZ: 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100;

/**
 * Reads a `/proc/<pid>/stat` line. The second field, the command name in parentheses, may itself
 * hold spaces and parentheses: the fields are counted after its last `)`.
 */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  // Field 3 (state) is the first after the name; utime, stime and starttime are fields 14, 15 and 22.
  const fields = text.slice(close + 2).split(' ');
  const ticks = (index: number): number => Number(fields[index]);
  return {
    state: fields[0] ?? '',
    cpuSeconds: (ticks(11) + ticks(12)) / TICKS_PER_SECOND,
    startTime: fields[19] ?? '',
  };
}

/** A process's stat, or undefined when there is no such process. */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseProcStat(text);
}

/** As `procStat`, synchronously (for a moment that must not wait: a child's start time as it is spawned). */
export function procStatSync(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}
