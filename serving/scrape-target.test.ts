import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSdGroup, scrapeAddress, writeScrapeTarget } from './scrape-target.js';

describe('Prometheus file-SD targets', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it('advertises the bound address, or a host name for a wildcard bind', () => {
    expect(scrapeAddress('http://127.0.0.1:4567')).toBe('127.0.0.1:4567');
    expect(scrapeAddress('http://0.0.0.0:4567')).toBe(`${os.hostname()}:4567`);
    expect(scrapeAddress('http://0.0.0.0:4567', 'sluice')).toBe('sluice:4567');
  });

  it('writes one group per process in the file-SD format, and removes it', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-sd-'));
    dirs.push(dataDir);
    const target = await writeScrapeTarget(dataDir, 'up', '127.0.0.1:9464');
    expect(path.basename(target.file)).toBe(`up-${process.pid}.json`);
    const written = JSON.parse(await fs.readFile(target.file, 'utf8')) as unknown;
    expect(written).toEqual(fileSdGroup('127.0.0.1:9464', 'up'));
    expect(written).toEqual([
      { targets: ['127.0.0.1:9464'], labels: { job: 'sluice', sluice_service: 'up', sluice_pid: String(process.pid) } },
    ]);
    expect(await fs.readdir(path.dirname(target.file))).toEqual([path.basename(target.file)]);
    await target.remove();
    expect(await fs.readdir(path.dirname(target.file))).toEqual([]);
  });
});
