import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../common/errors.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { serveOps, type OpsRoute, type OpsServer } from './ops-server.js';

const TOKEN = 'ops-test-token-0123456789';
const health = { live: () => true, ready: () => false, detail: () => ({ stages: ['ingest'] }) };
const echo: OpsRoute = (_request, url) =>
  Promise.resolve(url.pathname === '/predict/m' ? { status: 200, body: { scored: true } } : undefined);

describe('the ops server', () => {
  let open: OpsServer;
  let guarded: OpsServer;

  beforeAll(async () => {
    open = await serveOps(createMetricsRegistry(false), health, '127.0.0.1', 0, [echo]);
    guarded = await serveOps(createMetricsRegistry(false), health, '127.0.0.1', 0, [echo], { tokens: [TOKEN] });
  });

  afterAll(async () => {
    await open.close();
    await guarded.close();
  });

  it('is open on loopback without tokens', async () => {
    expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
    expect(await (await fetch(`${open.url}/predict/m`, { method: 'POST' })).json()).toEqual({ scored: true });
    expect(await (await fetch(`${open.url}/ready`)).json()).toEqual({ status: 'unavailable', stages: ['ingest'] });
  });

  it('asks for the token on /metrics, /features and /predict, and accepts Bearer or Basic', async () => {
    for (const path of ['/metrics', '/predict/m', '/features/v/e']) {
      const missing = await fetch(`${guarded.url}${path}`, { method: path === '/predict/m' ? 'POST' : 'GET' });
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/Bearer/);
    }
    expect((await fetch(`${guarded.url}/metrics`, { headers: { Authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    expect((await fetch(`${guarded.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const basic = `Basic ${Buffer.from(`prometheus:${TOKEN}`).toString('base64')}`;
    expect(await (await fetch(`${guarded.url}/predict/m`, { method: 'POST', headers: { Authorization: basic } })).json()).toEqual({
      scored: true,
    });
  });

  it('answers /health and /ready to anyone, with their detail only to authenticated clients', async () => {
    expect(await (await fetch(`${guarded.url}/health`)).json()).toEqual({ status: 'ok' });
    const detailed = await fetch(`${guarded.url}/ready`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(detailed.status).toBe(503);
    expect(await detailed.json()).toEqual({ status: 'unavailable', stages: ['ingest'] });
  });

  it('refuses to listen on a non-loopback address without tokens', async () => {
    await expect(serveOps(createMetricsRegistry(false), health, '0.0.0.0', 0)).rejects.toThrow(ConfigError);
    await expect(serveOps(createMetricsRegistry(false), health, '::', 0)).rejects.toThrow(/SLUICE_METRICS_HOST.*SLUICE_OPS_AUTH_TOKEN/);
    const bound = await serveOps(createMetricsRegistry(false), health, '0.0.0.0', 0, [], { tokens: [TOKEN] });
    await bound.close();
  });
});
