import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DataDirError } from './errors.js';

/**
 * Creates the directory if needed and proves it is writable by writing and removing a probe file
 * (permission bits alone say nothing when running as root).
 */
export async function ensureWritableDir(dir: string): Promise<string> {
  const absolute = path.resolve(dir);
  try {
    await fs.mkdir(absolute, { recursive: true });
    const probe = path.join(absolute, `.write-probe-${randomBytes(4).toString('hex')}`);
    await fs.writeFile(probe, 'ok');
    await fs.rm(probe);
  } catch (cause) {
    throw new DataDirError(absolute, { cause });
  }
  return absolute;
}

export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes JSON atomically (temporary file, then rename) so readers never see half a file. */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`);
  await fs.rename(temporary, file);
}
