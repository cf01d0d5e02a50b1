import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StackState } from '../../app/stack.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { cleanEnv, DEMO_TOPOLOGY, spawnSluice, waitForOutput, type SluiceProcess } from '../cli/sluice-process.js';
import { waitUntil } from '../helpers.js';
import { startPrometheus } from './prometheus-process.js';

interface Target {
  readonly labels: Record<string, string>;
  readonly scrapeUrl: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A real Prometheus (Debian's build) started from the shipped deploy/prometheus/prometheus.yml,
 * unchanged, finds every sluice process through the file-SD files they write — `sluice up` and a
 * `sluice run pipeline` beside it — scrapes each one successfully with its own text-format parser,
 * and drops a process's target when it stops.
 */
describe('Prometheus from the shipped config', () => {
  const sluices: SluiceProcess[] = [];
  let prometheus: ReturnType<typeof startPrometheus> | undefined;
  let root: string | undefined;

  afterAll(async () => {
    prometheus?.child.kill('SIGTERM');
    for (const proc of sluices) if (proc.child.exitCode === null) proc.child.kill('SIGINT');
    for (const proc of sluices) {
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 60_000);
      await proc.exited;
      clearTimeout(timer);
    }
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('scrapes every sluice process as a target', async () => {
    // The checkout's layout in miniature: the shipped config as it is, the data directory beside it.
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-prometheus-'));
    const configDir = path.join(root, 'deploy', 'prometheus');
    await fs.mkdir(configDir, { recursive: true });
    await fs.copyFile(path.join(PROJECT_ROOT, 'deploy', 'prometheus', 'prometheus.yml'), path.join(configDir, 'prometheus.yml'));
    const dataDir = path.join(root, '.sluice');
    const env = cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPOLOGY: DEMO_TOPOLOGY });

    const up = spawnSluice(['up'], env);
    sluices.push(up);
    await waitForOutput(up, /sluice is up/, 180_000);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir, 'stack.json'), 'utf8')) as StackState;
    const run = spawnSluice(['run', 'pipeline'], env);
    sluices.push(run);
    await waitForOutput(run, /stage pipeline running/, 120_000);
    const runMetrics = /metrics at (\S+)/.exec(run.stdout())?.[1] ?? '';

    const port = await freePort();
    const api = `http://127.0.0.1:${port}/api/v1`;
    prometheus = startPrometheus(
      [
        `--config.file=${path.join(configDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(root, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      root,
    );
    const server = prometheus;
    const targets = async (): Promise<Target[]> => {
      try {
        const body = (await (await fetch(`${api}/targets?state=active`)).json()) as { data: { activeTargets: Target[] } };
        return body.data.activeTargets.filter((target) => target.labels.job === 'sluice');
      } catch {
        return [];
      }
    };
    const expected = [stack.endpoints.metrics, runMetrics].sort();
    await waitUntil(
      async () => {
        if (server.child.exitCode !== null) throw new Error(`Prometheus exited: ${server.output().slice(-2_000)}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const found = await targets();
        return found.length === 2 && found.every((target) => target.health === 'up');
      },
      90_000,
      `Prometheus to scrape ${expected.join(' and ')}`,
    ).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}; targets: ${JSON.stringify(await targets())}`, { cause: error });
    });
    const found = await targets();
    expect(found.map((target) => target.scrapeUrl).sort()).toEqual(expected);
    expect(found.map((target) => target.labels.sluice_service).sort()).toEqual(['pipeline', 'up']);
    expect(found.map((target) => target.labels.sluice_pid).sort()).toEqual([String(up.child.pid), String(run.child.pid)].sort());
    expect(found.map((target) => target.lastError)).toEqual(['', '']);

    // The samples are in: Prometheus parsed sluice's text format into series of both processes.
    const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(promql)}`)).json()) as {
        status: string;
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      expect(body.status).toBe('success');
      return body.data.result;
    };
    const upSeries = await query('up{job="sluice"}');
    expect(upSeries.map((series) => series.value[1])).toEqual(['1', '1']);
    const ingested = await query('count by (sluice_service) ({job="sluice", __name__=~"sluice_.+"})');
    expect(ingested.map((series) => series.metric.sluice_service).sort()).toEqual(['pipeline', 'up']);
    for (const series of ingested) expect(Number(series.value[1]), series.metric.sluice_service).toBeGreaterThan(10);

    // A process that stops takes its target away.
    run.child.kill('SIGINT');
    await run.exited;
    await waitUntil(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return (await targets()).length === 1;
      },
      60_000,
      'the stopped process to leave the targets',
    );
    expect((await targets()).map((target) => target.labels.sluice_service)).toEqual(['up']);
  });
});
