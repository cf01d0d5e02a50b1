import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { printTable } from './report.js';
import { tieToParent } from '../common/child-tie.js';

/**
 * How fast the `sluice` command answers, as a user runs it (`node bin/sluice.js ...`, a new process
 * each time): `--help`, `status` and `sql "SELECT 1"` against a stack this benchmark starts
 * (`sluice up --topology examples/fraud`, no demo, in a temporary data directory), 5 runs each,
 * min and median wall-clock seconds. Both ways bin/sluice.js can run: the compiled CLI in dist/
 * (built first when missing or older than the sources) and the TypeScript sources through tsx.
 */
const RUNS = 5;
const BIN = path.join(PROJECT_ROOT, 'bin', 'sluice.js');
const COMMANDS: readonly (readonly string[])[] = [['--help'], ['status'], ['sql', 'SELECT 1']];

function env(dataDir: string): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = { SLUICE_DATA_DIR: dataDir, SLUICE_LOG_LEVEL: 'warn' };
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('SLUICE_') && key !== 'KAFKA_BROKERS') clean[key] = value;
  return clean;
}

/** One run of the CLI, start to exit, in seconds; throws when it fails. */
function timeOnce(args: readonly string[], environment: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // Not tied to this process (see startStack): a second process started beside it would be timed too.
    const child = spawn(process.execPath, args, { env: environment, cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new Error(`sluice ${args.join(' ')} exited with ${code}: ${stderr}`));
    });
  });
}

async function startStack(dataDir: string): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'up', '--topology', path.join(PROJECT_ROOT, 'examples', 'fraud')], {
    env: env(dataDir),
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tieToParent(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 180_000;
  while (!out.includes('sluice is up')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sluice up did not come up: ${out}\n${err.slice(-2_000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    async stop() {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function main(): Promise<void> {
  // The compiled CLI as `npm ci` leaves it; bin/sluice.js would fall back to tsx on a stale build.
  const built = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'build-dist.js')], { stdio: 'inherit' });
  if (built.status !== 0 || !existsSync(path.join(PROJECT_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('building dist/ failed');

  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-cli-'));
  const stack = await startStack(dataDir);
  const rows: Record<string, string | number>[] = [];
  try {
    const ways = [
      { way: 'compiled (dist/)', args: [BIN] },
      { way: 'sources (tsx)', args: ['--import', 'tsx', path.join(PROJECT_ROOT, 'cli', 'main.ts')] },
    ];
    for (const { way, args } of ways) {
      for (const command of COMMANDS) {
        const seconds: number[] = [];
        for (let run = 0; run < RUNS; run++) seconds.push(await timeOnce([...args, ...command], env(dataDir)));
        seconds.sort((left, right) => left - right);
        rows.push({
          command: `sluice ${command.map((part) => (part.includes(' ') ? `"${part}"` : part)).join(' ')}`,
          way,
          runs: RUNS,
          'min s': (seconds[0] ?? Number.NaN).toFixed(2),
          'median s': (seconds[Math.floor(RUNS / 2)] ?? Number.NaN).toFixed(2),
          'max s': (seconds[RUNS - 1] ?? Number.NaN).toFixed(2),
        });
      }
    }
  } finally {
    await stack.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  printTable(
    `sluice CLI start-to-exit seconds (a new process per run; ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)})`,
    rows,
  );
}
