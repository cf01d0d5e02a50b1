import http from 'node:http';
import { listen, type ListeningServer } from '../common/http.js';
import type { MetricsRegistry } from './metrics.js';

export interface HealthSource {
  /** Alive: the process is working (not failed). */
  live(): boolean;
  /** Ready: partitions assigned, state restored, processing. */
  ready(): boolean;
  /** Extra detail for humans and scripts. */
  detail(): Record<string, unknown>;
}

export type OpsServer = ListeningServer;

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
  return listen(server, host, port);
}
