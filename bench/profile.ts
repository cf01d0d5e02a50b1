import fs from 'node:fs/promises';
import path from 'node:path';
import { printTable } from './report.js';

/**
 * The top 10 functions by self time, and the time by package or source folder, of the CPU profile
 * (`node --cpu-prof`) a benchmarked process wrote into dir on exit.
 */
export async function printProfile(dir: string, what: string): Promise<void> {
  const files = (await fs.readdir(dir).catch(() => [])).filter((file) => file.endsWith('.cpuprofile'));
  const [file] = files;
  if (!file) return;
  // BENCH_PROFILE_OUT=<file>: keep the profile (open it in Chrome's DevTools, or read it with a script).
  if (process.env.BENCH_PROFILE_OUT) await fs.copyFile(path.join(dir, file), process.env.BENCH_PROFILE_OUT);
  const profile = JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const durationOf = sampleDuration(profile);
  const self = selfTimes(profile);
  const total = [...self.values()].reduce((sum, value) => sum + value, 0);
  // The same samples by package or source folder: where the time goes at a coarser grain.
  const byModule = new Map<string, number>();
  profile.samples.forEach((id, index) => {
    const url = byId.get(id)?.callFrame.url ?? '';
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    const where =
      url === ''
        ? '(native / gc / idle)'
        : match
          ? (match[1] ?? url)
          : url.startsWith('node:')
            ? 'node'
            : url.replace(/^.*\/(streams|state|schemas|kafka|models|common|app)\//, '$1/').replace(/\/[^/]*$/, '');
    byModule.set(where, (byModule.get(where) ?? 0) + durationOf(index));
  });
  printTable(
    `CPU profile of ${what}, self time by package or folder`,
    [...byModule]
      .sort((left, right) => right[1] - left[1])
      .slice(0, 14)
      .map(([where, micros]) => ({ where, share: `${((micros / total) * 100).toFixed(1)}%` })),
  );
  printTable(`CPU profile of ${what}, top 10 by self time`, topShares(self, 10, 90));
}

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

/** A CPU profile as `node --cpu-prof` and the inspector's `Profiler.stop` write it. */
export interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: CallFrame; readonly children?: readonly number[] }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * A sample stands for the time from it to the next one (`timeDeltas[i]` is the time since the
 * sample before it), as a flame chart draws it: a gap between samples then goes to what was
 * sampled at its start, not to the first function sampled after it.
 */
function sampleDuration(profile: CpuProfile): (index: number) => number {
  return (index) => profile.timeDeltas[index + 1] ?? 0;
}

/**
 * Self time by function. Native code called from JavaScript (a builtin, or a C++ binding's work)
 * carries its JavaScript caller too, `<name> (native, in <caller>)`: the profiler names such a frame
 * after the nearest symbol it finds in the binary, which in a binding without symbols may be
 * another function altogether (RocksDB's batch writes came out as `crc32c`, which reads as Kafka's
 * checksum). V8's own entries (`(garbage collector)`, `(idle)`, `(program)`) stay as they are.
 */
export function selfTimes(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const durationOf = sampleDuration(profile);
  const self = new Map<string, number>();
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    if (!node) return;
    const name = isNativeCall(node.callFrame)
      ? nativeName(node.callFrame.functionName, callerName(parentOf.get(id), byId, parentOf))
      : frameName(node.callFrame, false);
    self.set(name, (self.get(name) ?? 0) + durationOf(index));
  });
  return self;
}

/** A frame of native code outside V8's own entries, whose name the profiler guessed. */
function isNativeCall({ url, functionName }: CallFrame): boolean {
  return url === '' && functionName !== '' && !functionName.startsWith('(');
}

/** `<name> (native, in <caller>)`, or `<name> (native)` where no JavaScript frame is above it. */
function nativeName(name: string, caller: string | undefined): string {
  return caller === undefined ? `${name} (native)` : `${name} (native, in ${caller})`;
}

/** The nearest JavaScript frame above a native one, as `frameName` names it. */
function callerName(
  parent: number | undefined,
  byId: ReadonlyMap<number, { readonly callFrame: CallFrame }>,
  parentOf: ReadonlyMap<number, number>,
): string | undefined {
  for (let id = parent; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id)?.callFrame;
    if (frame && frame.url !== '') return frameName(frame, false);
  }
  return undefined;
}

/** `name file:line` of a profile's frame; with its column too (a transpiled file may be one line). */
function frameName({ functionName, url, lineNumber, columnNumber }: CallFrame, withColumn: boolean): string {
  const where =
    url === '' ? '' : ` ${url.replace(/^.*\/(node_modules\/)?/, '')}:${lineNumber + 1}${withColumn ? `:${columnNumber + 1}` : ''}`;
  return `${functionName || '(anonymous)'}${where}`;
}

/** The `count` largest totals by function, with their share of all (names cut to `width`). */
function topShares(totals: ReadonlyMap<string, number>, count: number, width: number): { function: string; share: string }[] {
  const total = [...totals.values()].reduce((sum, value) => sum + value, 0);
  return [...totals]
    .sort((left, right) => right[1] - left[1])
    .slice(0, count)
    .map(([name, amount]) => ({ function: name.slice(0, width), share: `${((amount / total) * 100).toFixed(1)}%` }));
}

/** A node of the inspector's sampling heap profile: bytes allocated by a function (sampled). */
interface AllocationNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: readonly AllocationNode[];
}

/**
 * The top functions by bytes allocated, from the inspector's sampling heap profile taken with the
 * objects that minor and major collections freed (what the garbage collector spends its time on,
 * not what stays alive). `BENCH_ALLOC_OUT=<file>` keeps the profile (a `.heapprofile` for DevTools).
 */
export async function printAllocationProfile(profile: { head: AllocationNode }, what: string, count: number, unit: string): Promise<void> {
  if (process.env.BENCH_ALLOC_OUT) await fs.writeFile(process.env.BENCH_ALLOC_OUT, JSON.stringify(profile));
  const self = new Map<string, number>();
  const visit = (node: AllocationNode): void => {
    const name = frameName(node.callFrame, true);
    self.set(name, (self.get(name) ?? 0) + node.selfSize);
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  const total = [...self.values()].reduce((sum, value) => sum + value, 0);
  printTable(
    `Allocations of ${what} (sampled, collected objects included): ${(total / 1024 / count).toFixed(2)} KiB per ${unit}, top 15`,
    topShares(self, 15, 100),
  );
}
