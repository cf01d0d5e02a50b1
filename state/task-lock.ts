import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TaskLockedError } from './errors.js';

/**
 * A task's state folder belongs to one owner at a time: a `.lock` file holding the owner's pid and
 * instance id. It appears whole or not at all: written to a file of its own, then hard-linked to
 * `.lock` (link fails if `.lock` exists), so no reader ever sees an empty lock. A lock held by a
 * live owner is never treated as corruption and never removed: the caller waits (the owner is
 * closing the task, or another process runs it). A lock whose process is gone is stale: one
 * contender at a time (under `.lock.takeover`) checks it is still the stale one it read and
 * removes it; then the taker links its own.
 */
export interface LockOwner {
  /** Distinguishes runtimes within one process (a task closing while its successor opens). */
  readonly instanceId: string;
}

interface LockFile {
  readonly pid: number;
  readonly instanceId: string;
  readonly task: string;
  readonly since: string;
}

export class TaskLock {
  private constructor(
    readonly file: string,
    private readonly content: LockFile,
  ) {}

  /** Takes the lock of `dir` for `task`, or throws TaskLockedError (retriable) naming the holder. */
  static async acquire(dir: string, task: string, owner: LockOwner): Promise<TaskLock> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, '.lock');
    const content: LockFile = { pid: process.pid, instanceId: owner.instanceId, task, since: new Date().toISOString() };
    const mine = path.join(dir, `.lock.${process.pid}.${randomUUID()}`);
    await fs.writeFile(mine, JSON.stringify(content));
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await fs.link(mine, file);
          return new TaskLock(file, content);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = await readLock(file);
        if (holder && isAlive(holder.pid)) {
          throw new TaskLockedError(
            `the state of task ${task} (${dir}) is locked by pid ${holder.pid} (instance ${holder.instanceId}) since ${holder.since}`,
            { context: { holder } },
          );
        }
        await takeStale(file, holder, mine);
      }
      throw new TaskLockedError(`the state of task ${task} (${dir}) is locked by a process that keeps re-taking it`);
    } finally {
      await fs.rm(mine, { force: true });
    }
  }

  /** Releases the lock if it is still ours. */
  async release(): Promise<void> {
    const holder = await readLock(this.file);
    if (holder && holder.pid === this.content.pid && holder.instanceId === this.content.instanceId) await fs.rm(this.file, { force: true });
  }
}

/**
 * Removes a stale lock, one contender at a time: the taker links its own lock file as
 * `.lock.takeover` (exclusive), re-reads `.lock` and removes it only if it still is the stale lock
 * it read. Contenders that find a takeover under way go back to linking (and find the new owner).
 */
async function takeStale(file: string, stale: LockFile | undefined, mine: string): Promise<void> {
  const guard = `${file}.takeover`;
  try {
    await fs.link(mine, guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // A taker that died mid-takeover leaves its guard: it is removed, the next round takes over.
    const taker = await readLock(guard);
    if (taker && !isAlive(taker.pid)) await fs.rm(guard, { force: true });
    return;
  }
  try {
    const current = await readLock(file);
    const same = current === undefined ? stale === undefined : stale !== undefined && sameLock(current, stale);
    if (same) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(guard, { force: true });
  }
}

function sameLock(a: LockFile, b: LockFile): boolean {
  return a.pid === b.pid && a.instanceId === b.instanceId && a.since === b.since;
}

async function readLock(file: string): Promise<LockFile | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<LockFile>;
    return typeof parsed.pid === 'number' && typeof parsed.instanceId === 'string'
      ? { pid: parsed.pid, instanceId: parsed.instanceId, task: String(parsed.task), since: String(parsed.since) }
      : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
