import fs from 'node:fs/promises';
import path from 'node:path';
import { TaskLockedError } from './errors.js';

/**
 * A task's state folder belongs to one owner at a time: a `.lock` file holding the owner's pid and
 * instance id, created exclusively. A lock held by a live owner is never treated as corruption and
 * never removed: the caller waits (the owner is closing the task, or another process runs it). A
 * lock whose process is gone is stale and taken over.
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
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await fs.writeFile(file, JSON.stringify(content), { flag: 'wx' });
        return new TaskLock(file, content);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readLock(file);
      if (holder && isAlive(holder.pid)) {
        throw new TaskLockedError(
          `the state of task ${task} (${dir}) is locked by pid ${holder.pid} (instance ${holder.instanceId}) since ${holder.since}`,
          {
            context: { holder },
          },
        );
      }
      // The holder is gone (or the file is unreadable from a crash mid-write): stale.
      await fs.rm(file, { force: true });
    }
    throw new TaskLockedError(`the state of task ${task} (${dir}) is locked by a process that keeps re-taking it`);
  }

  /** Releases the lock if it is still ours. */
  async release(): Promise<void> {
    const holder = await readLock(this.file);
    if (holder && holder.pid === this.content.pid && holder.instanceId === this.content.instanceId) await fs.rm(this.file, { force: true });
  }
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
