import http from 'node:http';
import { assertBindable, authenticate, AUTH_CHALLENGE } from '../common/auth.js';
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

/**
 * What a route answers: `body` as JSON, or as it is (a string or bytes) when `contentType` is
 * given (the dashboard's page and assets); `headers` are added to the response.
 */
export interface OpsAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly contentType?: string;
  readonly headers?: http.OutgoingHttpHeaders;
}

/** An extra handler (online features, /predict, the dashboard): answers the requests it owns, undefined for the rest. */
export type OpsRoute = (request: http.IncomingMessage, url: URL) => Promise<OpsAnswer | undefined>;

export interface OpsServerOptions {
  /**
   * Tokens clients authenticate with (`Authorization: Bearer <token>`, or Basic with the token as
   * the password) for everything but `/health` and `/ready`, which answer their status to anyone
   * (and their detail only to authenticated clients). None: open, which only loopback allows.
   */
  readonly tokens?: readonly string[];
}

/**
 * `/metrics` (Prometheus text format), `/health` (liveness) and `/ready` (readiness) on one port,
 * loopback by default, and the extra routes (online features, /predict). Refuses to listen on a
 * non-loopback address without tokens.
 */
export async function serveOps(
  registry: MetricsRegistry,
  health: HealthSource,
  host: string,
  port: number,
  routes: readonly OpsRoute[] = [],
  options: OpsServerOptions = {},
): Promise<OpsServer> {
  const tokens = options.tokens ?? [];
  assertBindable('/metrics, /features and /predict', host, tokens, 'SLUICE_METRICS_HOST', 'SLUICE_OPS_AUTH_TOKEN');
  // Errors the Kafka client retries itself are counted there, not logged as errors.
  registerKafkaClientMetrics(registry);
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://ops');
    const path = url.pathname;
    const reply = (status: number, type: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}): void => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
      response.end(body);
    };
    const probe = path === '/health' || path === '/ready';
    const outcome = authenticate(request, tokens);
    const authenticated = outcome === 'open' || outcome === 'ok';
    if (!authenticated && !probe) {
      request.resume();
      reply(
        401,
        'application/json',
        JSON.stringify({ error: outcome === 'missing' ? 'authentication required: send Authorization: Bearer <token>' : 'invalid token' }),
        { 'WWW-Authenticate': AUTH_CHALLENGE },
      );
      return;
    }
    void (async () => {
      for (const route of routes) {
        const answer = await route(request, url);
        if (answer) return answer;
      }
      return undefined;
    })().then(
      (answer) => {
        if (answer?.contentType !== undefined && (typeof answer.body === 'string' || Buffer.isBuffer(answer.body)))
          reply(answer.status, answer.contentType, answer.body, answer.headers);
        else if (answer) reply(answer.status, 'application/json', JSON.stringify(answer.body), answer.headers);
        else builtIn();
      },
      (error: unknown) =>
        // Percent-encoding that does not decode is the client's mistake.
        error instanceof URIError
          ? reply(400, 'application/json', JSON.stringify({ error: 'malformed percent-encoding in the path' }))
          : reply(500, 'application/json', JSON.stringify({ error: error instanceof Error ? error.message : String(error) })),
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
        const detail = authenticated ? health.detail() : {};
        reply(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...detail }));
      } else {
        reply(404, 'application/json', JSON.stringify({ error: 'not found', paths: ['/metrics', '/health', '/ready'] }));
      }
    }
  });
  return listen(server, host, port);
}
