import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runSluice } from '../cli/sluice-process.js';

describe('binding a non-loopback address without authentication', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bind-'));
  });

  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it.each([
    [
      'SLUICE_SQL_HOST',
      /refusing to serve the SQL endpoint on 0\.0\.0\.0 \(SLUICE_SQL_HOST\) without authentication.*SLUICE_SQL_AUTH_TOKEN/,
    ],
    ['SLUICE_SCHEMA_REGISTRY_HOST', /refusing to serve the schema registry on 0\.0\.0\.0 .*SLUICE_REGISTRY_AUTH_TOKEN/],
    ['SLUICE_METRICS_HOST', /refusing to serve \/metrics, \/features and \/predict on 0\.0\.0\.0 .*SLUICE_OPS_AUTH_TOKEN/],
  ])('sluice up with %s=0.0.0.0 refuses to start, in one line, before starting anything', async (setting, message) => {
    const result = await runSluice(['up'], cleanEnv({ SLUICE_DATA_DIR: dataDir, [setting]: '0.0.0.0' }));
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    // Nothing was started: no broker folder, no stack file.
    expect(await fs.readdir(dataDir)).toEqual([]);
  });

  it('sluice run registry refuses the same way', async () => {
    const result = await runSluice(['run', 'registry'], cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_SCHEMA_REGISTRY_HOST: '0.0.0.0' }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refusing to serve the schema registry on 0\.0\.0\.0/);
  });
});
