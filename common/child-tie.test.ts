import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tieToParent } from './child-tie.js';
import { procStat } from './proc-stat.js';

const HELPER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child-tie.ts');

/** Whether a process with this pid runs (a zombie, exited but not reaped, counts as ended). */
async function running(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

async function within(ms: number, condition: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A parent process that starts a child which would run for a minute, prints the child's pid, and
 * (with `tie`) ties it to itself with a grace time of `graceMs`.
 */
function parentOf(tie: boolean, graceMs: number, childCode = 'setTimeout(() => {}, 60000)') {
  const script = `
    import { spawn } from 'node:child_process';
    import { tieToParent } from ${JSON.stringify(HELPER)};
    const child = spawn(process.execPath, ['-e', ${JSON.stringify(childCode + ";console.log('up')")}], { stdio: ['ignore', 'pipe', 'ignore'] });
    ${tie ? `tieToParent(child, ${graceMs});` : ''}
    // Once the child runs its code (a signal handler it sets is in place).
    child.stdout.once('data', () => console.log(child.pid));
    setTimeout(() => {}, 60000);`;
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    parent.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    parent.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = /^(\d+)\n/.exec(out);
      if (line) resolve(Number(line[1]));
    });
    parent.once('exit', () => reject(new Error(`the parent exited: ${err}`)));
  });
  return { parent, pid };
}

describe('tieToParent', () => {
  it('ends the child when its parent is SIGKILLed, and only when tied', async () => {
    // A grace time far beyond the wait: only the SIGTERM can end the child within it.
    const tied = parentOf(true, 60_000);
    const loose = parentOf(false, 0);
    const [tiedChild, looseChild] = await Promise.all([tied.pid, loose.pid]);
    try {
      expect(await running(tiedChild)).toBe(true);
      tied.parent.kill('SIGKILL');
      loose.parent.kill('SIGKILL');
      expect(await within(5_000, async () => !(await running(tiedChild)))).toBe(true);
      // The loose one outlives its parent: what the tie prevents.
      expect(await running(looseChild)).toBe(true);
    } finally {
      if (await running(tiedChild)) process.kill(tiedChild, 'SIGKILL');
      if (await running(looseChild)) process.kill(looseChild, 'SIGKILL');
    }
  }, 30_000);

  it('SIGKILLs a child that ignores SIGTERM after the grace time', async () => {
    const stubborn = parentOf(true, 2_000, "process.on('SIGTERM', () => {}); setTimeout(() => {}, 60000)");
    const child = await stubborn.pid;
    try {
      stubborn.parent.kill('SIGKILL');
      // SIGTERM first: still running a second later (the grace time is 2 s), then SIGKILLed.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await running(child)).toBe(true);
      expect(await within(15_000, async () => !(await running(child)))).toBe(true);
    } finally {
      if (await running(child)) process.kill(child, 'SIGKILL');
    }
  }, 30_000);

  it('leaves nothing behind when the child ends first', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 1500)'], { stdio: 'ignore' });
    tieToParent(child);
    const pid = child.pid as number;
    const ended = new Promise((resolve) => child.once('exit', resolve));
    // The watcher is a shell named after the child's pid.
    const watchers = async (): Promise<number> => {
      const ps = spawn('pgrep', ['-f', `sluice-child-watch ${pid} `]);
      let out = '';
      ps.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await new Promise((resolve) => ps.once('exit', resolve));
      return out.trim() === '' ? 0 : out.trim().split('\n').length;
    };
    expect(await watchers()).toBe(1);
    await ended;
    expect(await within(5_000, async () => (await watchers()) === 0)).toBe(true);
  }, 30_000);
});
