import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskLock } from './task-lock.js';

const dirs: string[] = [];

async function folder(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-lock-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** A pid no live process has (above the kernel's pid_max). */
const DEAD_PID = 2 ** 22 + 1;

describe('TaskLock', () => {
  it('of many owners taking one folder at once, exactly one holds it', async () => {
    const dir = await folder();
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) => TaskLock.acquire(dir, 't.0', { instanceId: `owner-${index}` })),
    );
    expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
  });

  it('of many owners taking over one stale lock at once, exactly one holds it', async () => {
    const dir = await folder();
    const stale = { pid: DEAD_PID, instanceId: 'gone', task: 't.0', since: new Date(0).toISOString() };
    await fs.writeFile(path.join(dir, '.lock'), JSON.stringify(stale));
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) => TaskLock.acquire(dir, 't.0', { instanceId: `owner-${index}` })),
    );
    expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(1);
    const holder = JSON.parse(await fs.readFile(path.join(dir, '.lock'), 'utf8')) as { pid: number; instanceId: string };
    expect(holder.pid).toBe(process.pid);
    // Nothing but the lock is left behind.
    expect(await fs.readdir(dir)).toEqual(['.lock']);
  });

  it('refuses while a live owner holds it, naming the owner, and is free again once released', async () => {
    const dir = await folder();
    const first = await TaskLock.acquire(dir, 't.0', { instanceId: 'a' });
    await expect(TaskLock.acquire(dir, 't.0', { instanceId: 'b' })).rejects.toThrow(/locked by pid \d+ \(instance a\)/);
    await first.release();
    const second = await TaskLock.acquire(dir, 't.0', { instanceId: 'b' });
    await second.release();
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
