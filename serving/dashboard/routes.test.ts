import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import demo from '../../examples/fraud/sluice.config.js';
import { stageMetrics } from '../../streams/runtime/index.js';
import { serveOps, type OpsServer } from '../ops-server.js';
import { dashboardRoutes, type DashboardSnapshot } from './routes.js';

describe('the dashboard routes', () => {
  let server: OpsServer;
  const metrics = createMetricsRegistry(false);

  beforeAll(async () => {
    stageMetrics(metrics).recordsIn.inc({ stage: 'pipeline', topic: 'raw.transactions' }, 42);
    const health = { live: () => true, ready: () => true, detail: () => ({}) };
    const routes = dashboardRoutes({
      metrics,
      store: undefined,
      topology: demo,
      topicPrefix: '',
      stages: () => [],
      servingVersion: () => 3,
      registeredVersions: () => [{ version: 3, aliases: ['champion'], metrics: { auc: 0.9 }, trainer: 't' }],
    });
    server = await serveOps(metrics, health, '127.0.0.1', 0, [routes]);
  });

  afterAll(() => server.close());

  it('serves the page at / and its assets, uPlot from its package', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    for (const asset of ['/dashboard/uplot.js', '/dashboard/uplot.css', '/dashboard/app.js', '/dashboard/app.css']) {
      expect(html).toContain(asset);
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status, asset).toBe(200);
      expect((await response.text()).length, asset).toBeGreaterThan(100);
    }
    expect(await (await fetch(`${server.url}/dashboard/uplot.js`)).text()).toMatch(/uPlot/);
    expect((await fetch(`${server.url}/dashboard/secret.txt`)).status).toBe(404);
  });

  it('answers /dashboard/data with the graph, metrics and models, and says why SQL sections are empty', async () => {
    const snapshot = (await (await fetch(`${server.url}/dashboard/data`)).json()) as DashboardSnapshot;
    expect(snapshot.graph[0]?.map((node) => node.id)).toEqual(['topic:raw.transactions', 'topic:raw.clicks', 'topic:raw.chargebacks']);
    expect(snapshot.graph[0]?.[0]?.count).toBe(42);
    expect(snapshot.metrics.stages).toEqual([expect.objectContaining({ stage: 'pipeline', recordsIn: 42 })]);
    expect(snapshot.models).toEqual([
      expect.objectContaining({
        name: 'fraud',
        servingVersion: 3,
        versions: [{ version: 3, aliases: ['champion'], auc: 0.9, trainer: 't' }],
      }),
    ]);
    expect(snapshot.alerts).toEqual({ error: 'this process has no offline store' });
  });
});
