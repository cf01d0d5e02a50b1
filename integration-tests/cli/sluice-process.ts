import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import { waitUntil } from '../helpers.js';
import { tieToParent } from '../../common/child-tie.js';

export const SLUICE_BIN = path.join(PROJECT_ROOT, 'bin', 'sluice.js');

export interface SluiceProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The demo topology the CLI tests run. */
export const DEMO_TOPOLOGY = path.join(PROJECT_ROOT, 'examples', 'fraud');

/** The environment of this process minus every SLUICE_* and KAFKA_BROKERS setting, plus the demo topology and `extra`. */
export function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { SLUICE_TOPOLOGY: DEMO_TOPOLOGY };
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('SLUICE_') && key !== 'KAFKA_BROKERS') env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) Reflect.deleteProperty(env, key);
    else env[key] = value;
  }
  return env;
}

/** Runs `node bin/sluice.js ...args` the way a user would (in the repository, or in `cwd`). */
export function spawnSluice(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string = PROJECT_ROOT): SluiceProcess {
  const child = spawn(process.execPath, [SLUICE_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  tieToParent(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs sluice to completion and returns what it printed. */
export async function runSluice(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
  cwd: string = PROJECT_ROOT,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawnSluice(args, env, cwd);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const { code } = await proc.exited;
  clearTimeout(timer);
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

export async function waitForOutput(proc: SluiceProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  let exitedEarly = false;
  void proc.exited.then(() => (exitedEarly = true));
  try {
    await waitUntil(
      () => {
        if (exitedEarly) throw new Error(`sluice exited before printing ${pattern}: ${proc.stderr()}`);
        return pattern.test(proc.stdout());
      },
      timeoutMs,
      `sluice to print ${pattern}`,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; its last output: ${proc.stdout().slice(-1_000)}\n${proc.stderr().slice(-3_000)}`, {
      cause: error,
    });
  }
}

/** Whether a process with this pid exists (a zombie counts as gone). */
export function processExists(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/**
 * The exit of a process, waited for; when it has not come after `diagnoseAfterMs`, what its threads
 * are doing (state and kernel wait channel per thread, and gdb's native backtraces where gdb is
 * installed) is printed once, so that a slow exit in CI leaves evidence.
 */
export async function exitedOrDiagnosed(
  proc: SluiceProcess,
  diagnoseAfterMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), diagnoseAfterMs).unref());
  const early = await Promise.race([proc.exited, timer]);
  if (early) return early;
  const pid = proc.child.pid;
  if (pid !== undefined) console.log(`sluice (pid ${pid}) has not exited after ${diagnoseAfterMs} ms:\n${threadReport(pid)}`);
  return proc.exited;
}

function threadReport(pid: number): string {
  const lines: string[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const read = (file: string): string => {
        try {
          return readFileSync(`/proc/${pid}/task/${task}/${file}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      const state = /^State:\s+(.*)$/m.exec(read('status'))?.[1] ?? '?';
      lines.push(`thread ${task} ${read('comm')}: ${state}, waiting in ${read('wchan')}`);
    }
  } catch (error) {
    lines.push(`no /proc/${pid}/task: ${String(error)}`);
  }
  const gdb = spawnSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply all bt 25'], { encoding: 'utf8', timeout: 60_000 });
  lines.push(gdb.error ? `gdb: ${gdb.error.message}` : `${gdb.stdout}\n${gdb.stderr}`);
  return lines.join('\n');
}
