import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/ports.js';
import { cleanEnv, runSluice } from './sluice-process.js';

/** A PATH folder holding only the named programs (symlinks to the real ones). */
async function pathWith(root: string, programs: readonly string[]): Promise<string> {
  const bin = await fs.mkdtemp(path.join(root, 'bin-'));
  await fs.symlink(process.execPath, path.join(bin, 'node'));
  for (const program of programs) {
    const real = execFileSync('sh', ['-c', `readlink -f "$(command -v ${program})"`])
      .toString()
      .trim();
    await fs.symlink(real, path.join(bin, program));
  }
  return bin;
}

/** The one line a failed command must print: `sluice: ...`, nothing else on stderr. */
function expectOneClearLine(result: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^sluice: /);
  expect(lines[0]).toMatch(pattern);
}

describe('sluice up in a bad environment fails at once with one clear line', () => {
  let root: string;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-badenv-'));
  });

  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('no Java', async () => {
    const bin = await pathWith(root, ['mvn']);
    const result = await runSluice(['up'], cleanEnv({ PATH: bin, JAVA_HOME: undefined, SLUICE_DATA_DIR: path.join(root, 'nojava') }));
    expectOneClearLine(result, /Java 17\+ is required .*install a JDK.*KAFKA_BROKERS/);
  });

  it('no Maven while the broker jars are not cached yet', async () => {
    const bin = await pathWith(root, ['java', 'javac']);
    const result = await runSluice(
      ['up'],
      cleanEnv({
        PATH: bin,
        JAVA_HOME: undefined,
        SLUICE_DATA_DIR: path.join(root, 'nomaven'),
        SLUICE_CACHE_DIR: path.join(root, 'empty-cache'),
      }),
    );
    expectOneClearLine(result, /Maven is required .*install Maven.*KAFKA_BROKERS/);
  });

  it('KAFKA_BROKERS that nothing answers on', async () => {
    const port = await freePort();
    const result = await runSluice(
      ['up'],
      cleanEnv({ KAFKA_BROKERS: `127.0.0.1:${port}`, SLUICE_DATA_DIR: path.join(root, 'unreachable') }),
    );
    expectOneClearLine(result, new RegExp(`cannot reach Kafka at 127\\.0\\.0\\.1:${port}.*KAFKA_BROKERS`));
  });

  it('SCHEMA_REGISTRY_URL that nothing answers on', async () => {
    const port = await freePort();
    const result = await runSluice(
      ['up'],
      cleanEnv({ SCHEMA_REGISTRY_URL: `http://127.0.0.1:${port}`, SLUICE_DATA_DIR: path.join(root, 'registry') }),
    );
    expectOneClearLine(result, new RegExp(`cannot reach the schema registry at http://127\\.0\\.0\\.1:${port} \\(SCHEMA_REGISTRY_URL\\)`));
  });

  it('a data directory that cannot be written', async () => {
    // Root ignores permission bits, so use a path below a regular file: nobody can create it.
    const file = path.join(root, 'a-file');
    await fs.writeFile(file, 'not a folder');
    const result = await runSluice(['up'], cleanEnv({ SLUICE_DATA_DIR: path.join(file, 'data') }));
    expectOneClearLine(result, /data directory .*a-file\/data is not writable.*SLUICE_DATA_DIR/);
  });

  it('a Kafka port that is already taken', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const result = await runSluice(['up'], cleanEnv({ SLUICE_KAFKA_PORT: String(port), SLUICE_DATA_DIR: path.join(root, 'port') }));
      expectOneClearLine(result, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use \\(SLUICE_KAFKA_PORT\\)`));
    } finally {
      server.close();
    }
  });

  it('a misspelt setting', async () => {
    const result = await runSluice(['up'], cleanEnv({ SLUICE_DATADIR: path.join(root, 'typo') }));
    expectOneClearLine(result, /unknown setting SLUICE_DATADIR/);
  });
});
