import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import { waitUntil } from '../helpers.js';
import { tieToParent } from '../../common/child-tie.js';

export { groupLag as lag } from '../helpers.js';

const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'count-stage.ts');

export interface CounterProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  /** Asks for the counts of the partitions it owns. */
  dump(file: string): Promise<Record<string, number>>;
}

export function startCounter(env: Record<string, string>): CounterProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: PROJECT_ROOT,
  });
  tieToParent(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = waitUntil(
    () => {
      if (child.exitCode !== null) throw new Error(`counter exited (${child.exitCode}): ${stderr}`);
      return stdout.includes('READY');
    },
    120_000,
    'the counter to be ready',
  );
  ready.catch(() => undefined);
  return {
    child,
    ready,
    exited,
    async dump(file) {
      const before = stdout.split('DUMPED').length;
      child.kill('SIGUSR2');
      await waitUntil(() => stdout.split('DUMPED').length > before, 30_000, 'the counter to dump its state');
      return JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, number>;
    },
  };
}

/** The exact counts per key of `count` events keyed k0..k(keys-1) round robin. */
export function expectedCounts(count: number, keys: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < count; i++) counts[`k${i % keys}`] = (counts[`k${i % keys}`] ?? 0) + 1;
  return counts;
}
