import path from 'node:path';
import { readJsonFile } from '../common/files.js';
import type { StackState } from './stack.js';

/**
 * The running stack's `stack.json`, read without loading the stack's services: what `sluice status`,
 * `sluice sql` and every command that looks for the cluster need, in a few milliseconds.
 */
export const STACK_FILE = 'stack.json';

export async function readStackState(dataDir: string): Promise<StackState | undefined> {
  return readJsonFile<StackState>(path.join(dataDir, STACK_FILE));
}

/** Whether a process with this pid exists (and may be signalled, or belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The stack of this data directory when its process is alive. */
export async function runningStack(dataDir: string): Promise<StackState | undefined> {
  const saved = await readStackState(dataDir);
  return saved && isAlive(saved.pid) ? saved : undefined;
}
