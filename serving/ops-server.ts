import http from 'node:http';
import { listen, type ListeningServer } from '../common/http.js';
import type { MetricsRegistry } from '../common/metrics.js';
import { registerKafkaClientMetrics } from '../kafka/index.js';

export interface HealthSource {
  /** Alive: the process is working (not failed). */
  live(): boolean;
  /** Ready: partitions assigned, state restored, processing. */
  ready(): boolean;
  /** Extra detail for humans and scripts. */
  detail(): Record<string, unknown>;
}

export type OpsServer = ListeningServer;

/** An extra handler (online features, /predict): answers the requests it owns, undefined for the rest. */
export type OpsRoute = (request: http.IncomingMessage, url: URL) => Promise<{ status: number; body: unknown } | undefined>;

/**
 * `/metrics` (Prometheus text format), `/health` (liveness) and `/ready` (readiness) on one port,
 * loopback by default.
 */
export async function serveOps(
  registry: MetricsRegistry,
  health: HealthSource,
  host: string,
  port: number,
  routes: readonly OpsRoute[] = [],
): Promise<OpsServer> {
  // Errors the Kafka client retries itself are counted there, not logged as errors.
  registerKafkaClientMetrics(registry);
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://ops');
    const path = url.pathname;
    const reply = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    };
    void (async () => {
      for (const route of routes) {
        const answer = await route(request, url);
        if (answer) return answer;
      }
      return undefined;
    })().then(
      (answer) => {
        if (answer) reply(answer.status, 'application/json', JSON.stringify(answer.body));
        else builtIn();
      },
      (error: unknown) => reply(500, 'application/json', JSON.stringify({ error: error instanceof Error ? error.message : String(error) })),
    );

    function builtIn(): void {
      if (request.method !== 'GET') {
        reply(405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => reply(200, registry.contentType, text),
          (error: unknown) => reply(500, 'text/plain', String(error)),
        );
      } else if (path === '/health' || path === '/ready') {
        const ok = path === '/health' ? health.live() : health.ready();
        reply(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...health.detail() }));
      } else {
        reply(404, 'application/json', JSON.stringify({ error: 'not found', paths: ['/metrics', '/health', '/ready'] }));
      }
    }
  });
  return listen(server, host, port);
}
