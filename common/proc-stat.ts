import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ProcStatError } from './errors.js';

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

/** Fields after the command name that `parseProcStat` needs: up to starttime (field 22). */
const FIELDS_NEEDED = 20;

/**
 * Reads a `/proc/<pid>/stat` line. The second field, the command name in parentheses, may itself
 * hold spaces and parentheses: the fields are counted after its last `)`. A line that does not
 * have the fields is an error, not zeros.
 */
export function parseProcStat(text: string, pid?: number): ProcStat {
  const close = text.lastIndexOf(')');
  // Field 3 (state) is the first after the name; utime, stime and starttime are fields 14, 15 and 22.
  const fields = close < 0 ? [] : text.slice(close + 2).split(' ');
  const [utime, stime, startTime] = [fields[11], fields[12], fields[19]];
  if (fields.length < FIELDS_NEEDED || ![utime, stime, startTime].every((field) => field !== undefined && /^\d+$/.test(field)))
    throw new ProcStatError(pid, `not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  return {
    state: fields[0] as string,
    cpuSeconds: (Number(utime) + Number(stime)) / TICKS_PER_SECOND,
    startTime: startTime as string,
  };
}

/** Whether a failed read of `/proc/<pid>/stat` means that there is no such process. */
function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

function unreadable(pid: number, error: unknown): ProcStatError {
  return new ProcStatError(pid, `cannot read /proc/${pid}/stat: ${(error as Error).message}`, { cause: error });
}

/** A process's stat, or undefined when there is no such process; any other failure to read it throws. */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (isGone(error)) return undefined;
    throw unreadable(pid, error);
  }
  return parseProcStat(text, pid);
}

/** A child's CPU seconds so far; an error once it has ended (a benchmark's figure is never a guess). */
export async function cpuSecondsOf(child: { readonly pid?: number | undefined }): Promise<number> {
  const stat = child.pid === undefined ? undefined : await procStat(child.pid);
  if (!stat) throw new ProcStatError(child.pid, `the process (pid ${child.pid ?? 'none: not started'}) has ended: no CPU time to read`);
  return stat.cpuSeconds;
}

/** As `procStat`, synchronously (for a moment that must not wait: a child's start time as it is spawned). */
export function procStatSync(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (isGone(error)) return undefined;
    throw unreadable(pid, error);
  }
  return parseProcStat(text, pid);
}
