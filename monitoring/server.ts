import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './metrics.js';

export interface HealthSource {
  /** Alive: the process is working (not failed). */
  live(): boolean;
  /** Ready: partitions assigned, state restored, processing. */
  ready(): boolean;
  /** Extra detail for humans and scripts. */
  detail(): Record<string, unknown>;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `/metrics` (Prometheus text format), `/health` (liveness) and `/ready` (readiness) on one port,
 * loopback by default.
 */
export async function serveOps(registry: MetricsRegistry, health: HealthSource, host: string, port: number): Promise<OpsServer> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    };
    if (request.method !== 'GET') {
      reply(405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
    } else if (path === '/metrics') {
      registry.metrics().then((text) => reply(200, registry.contentType, text), (error: unknown) => reply(500, 'text/plain', String(error)));
    } else if (path === '/health' || path === '/ready') {
      const ok = path === '/health' ? health.live() : health.ready();
      reply(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...health.detail() }));
    } else {
      reply(404, 'application/json', JSON.stringify({ error: 'not found', paths: ['/metrics', '/health', '/ready'] }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
