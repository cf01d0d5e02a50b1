import { readFile } from 'node:fs/promises';
import { parseProcStat, procStat } from '../common/proc-stat.js';

/**
 * Where a benchmark's CPU went while it ran, from /proc: the machine's busy time (all processes),
 * this process's and its main thread's, and a child process's (the broker). The stage's JavaScript
 * runs on the main thread: a main thread near 1 CPU-second per second bounds the stage whatever
 * else is free, and a machine near all its cores busy bounds every process on it.
 */
export interface CpuSnapshot {
  /** Busy seconds of all the machine's cores together (user, nice, system, irq, softirq, steal). */
  readonly machineBusy: number;
  /** Seconds of all the machine's cores together, busy or idle. */
  readonly machineTotal: number;
  readonly process: number;
  readonly mainThread: number;
  /** The other process's CPU-seconds; undefined when none was named (an external broker). */
  readonly other: number | undefined;
}

/** Clock ticks per second of /proc/stat's and /proc/<pid>/stat's times (USER_HZ). */
const TICKS_PER_SECOND = 100;

/**
 * The first line of /proc/stat: `cpu  user nice system idle iowait irq softirq steal guest
 * guest_nice`, in ticks of all cores together. Guest time is already in user and nice.
 */
export function parseMachineCpu(text: string): { readonly busy: number; readonly total: number } {
  const line = text.split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu' || fields.length < 9 || !fields.slice(1, 9).every((field) => /^\d+$/.test(field)))
    throw new Error(`not the first line of /proc/stat: ${line.slice(0, 80)}`);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields.slice(1, 9).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle + iowait) / TICKS_PER_SECOND };
}

export async function cpuSnapshot(otherPid?: number): Promise<CpuSnapshot> {
  const [machine, own, main, other] = await Promise.all([
    readFile('/proc/stat', 'utf8'),
    procStat(process.pid),
    readFile(`/proc/self/task/${process.pid}/stat`, 'utf8'),
    otherPid === undefined ? undefined : procStat(otherPid),
  ]);
  if (!own) throw new Error('cannot read this process in /proc');
  if (otherPid !== undefined && !other) throw new Error(`process ${otherPid} has ended: no CPU time to read`);
  const { busy, total } = parseMachineCpu(machine);
  return {
    machineBusy: busy,
    machineTotal: total,
    process: own.cpuSeconds,
    mainThread: parseProcStat(main).cpuSeconds,
    other: other?.cpuSeconds,
  };
}

/** What was spent between two snapshots, in CPU-seconds. */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  return {
    machineBusy: after.machineBusy - before.machineBusy,
    machineTotal: after.machineTotal - before.machineTotal,
    process: after.process - before.process,
    mainThread: after.mainThread - before.mainThread,
    other: after.other === undefined || before.other === undefined ? undefined : after.other - before.other,
  };
}
