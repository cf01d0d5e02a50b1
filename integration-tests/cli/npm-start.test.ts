import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import type { StackState } from '../../app/stack.js';
import { waitUntil } from '../helpers.js';
import { cleanEnv, processExists } from './sluice-process.js';
import { tieToParent } from '../../common/child-tie.js';

/** `npm start` as a new user runs it: in a terminal's foreground group, stopped by Ctrl-C (SIGINT to the group). */
describe('npm start', () => {
  it('runs the whole loop until predictions of a trained model are in ClickHouse, and Ctrl-C leaves nothing behind', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-npm-start-'));
    const child = spawn('npm', ['start'], {
      cwd: PROJECT_ROOT,
      env: cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    tieToParent(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    let gone = false;
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        gone = true;
        resolve(code);
      }),
    );
    const group = child.pid!;
    let state: StackState | undefined;
    try {
      await waitUntil(
        async () => {
          if (gone) throw new Error(`npm start exited early: ${out}\n${err.slice(-3_000)}`);
          state = await fs.readFile(path.join(dataDir, 'stack.json'), 'utf8').then(
            (text) => JSON.parse(text) as StackState,
            () => undefined,
          );
          // stack.json is written just before the endpoints are printed.
          return state !== undefined && out.includes('sluice is up');
        },
        180_000,
        'the stack to be up',
      );
      expect(out).toContain('sluice is up');
      const sql = state!.endpoints.clickhouse;
      const championPredictions = async (): Promise<number> => {
        const response = await fetch(
          `${sql}/?query=${encodeURIComponent("SELECT count() FROM predictions_fraud WHERE deployment = 'CHAMPION' AND model_version >= 1")}`,
        ).catch(() => undefined);
        return response?.ok ? Number((await response.text()).trim()) : 0;
      };
      // The demo ingests 30 hours of history first (about 4 minutes on 2 cores).
      await waitUntil(async () => (await championPredictions()) > 0, 540_000, 'predictions of a trained model in ClickHouse');
      expect(out).toMatch(/model fraud v1 trained from replayed topics \(AUC [\d.]+/);
    } finally {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the exit listener
      if (!gone) process.kill(-group, 'SIGINT');
      const timer = setTimeout(() => process.kill(-group, 'SIGKILL'), 120_000);
      await exited;
      clearTimeout(timer);
    }
    expect(out).toContain('stopped');
    // Nothing left: not npm, not sluice, not the broker (its own group, ended by sluice).
    await waitUntil(
      () => !processExists(state!.pid) && !(state!.kafkaPid !== undefined && processExists(state!.kafkaPid)),
      30_000,
      'every process to exit',
    );
    expect(() => process.kill(-group, 0)).toThrow();
    await fs.rm(dataDir, { recursive: true, force: true });
  }, 900_000);
});
