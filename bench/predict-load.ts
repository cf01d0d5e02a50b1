import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The load side of `npm run bench -- predict`, in a worker thread so that the client does not
 * share the server's event loop: keep-alive HTTP/1.1 over a bounded number of connections to a
 * loopback URL, bounded in requests and time.
 *
 * - `closed`: every connection sends its next request when the previous one is answered
 *   (throughput at a fixed concurrency);
 * - `open`: requests are due at a fixed rate whatever the answers do, and each one's latency runs
 *   from when it was due (no coordinated omission): the latency a caller at that rate sees.
 */
export interface LoadRequest {
  readonly url: string;
  /** Opens every connection with one request before measuring. */
  readonly preconnect?: boolean;
  readonly mode: 'closed' | 'open';
  readonly connections: number;
  /** Requests per second (open mode). */
  readonly rate: number;
  readonly seconds: number;
  readonly maxRequests: number;
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly bodies: readonly string[];
}

export interface LoadResult {
  readonly sent: number;
  /** Milliseconds each request left after it was due (open mode), sorted: the client's own lag. */
  readonly lateness: number[];
  /** Milliseconds per answered request, sorted. */
  readonly latencies: number[];
  readonly statuses: Record<string, number>;
  readonly timeouts: number;
  readonly errors: number;
  readonly seconds: number;
}

async function run(request: LoadRequest): Promise<LoadResult> {
  const target = new URL(request.url);
  // One agent of one socket per connection: request i goes to connection i mod N, as N clients would.
  const agents = Array.from({ length: request.connections }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const latencies: number[] = [];
  const lateness: number[] = [];
  const statuses: Record<string, number> = {};
  let timeouts = 0;
  let errors = 0;
  let sent = 0;
  let started = performance.now();
  let deadline = started + request.seconds * 1000;

  const send = (agent: http.Agent, body: string, due: number): Promise<void> =>
    new Promise((resolve) => {
      sent++;
      lateness.push(performance.now() - due);
      const outgoing = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...request.headers },
          timeout: request.timeoutMs,
        },
        (response) => {
          response.resume();
          response.once('end', () => {
            latencies.push(performance.now() - due);
            const status = String(response.statusCode ?? 0);
            statuses[status] = (statuses[status] ?? 0) + 1;
            resolve();
          });
        },
      );
      outgoing.once('timeout', () => {
        timeouts++;
        outgoing.destroy();
      });
      outgoing.once('error', () => {
        errors++;
        resolve();
      });
      outgoing.end(body);
    });

  const bodyOf = (index: number): string => request.bodies[index % request.bodies.length] ?? '{}';
  if (request.preconnect) {
    await Promise.all(agents.map((agent, index) => send(agent, bodyOf(index), performance.now())));
    latencies.length = 0;
    lateness.length = 0;
    sent = 0;
    for (const key of Object.keys(statuses)) Reflect.deleteProperty(statuses, key);
    started = performance.now();
    deadline = started + request.seconds * 1000;
  }
  if (request.mode === 'closed') {
    let next = 0;
    await Promise.all(
      agents.map(async (agent) => {
        while (performance.now() < deadline && next < request.maxRequests) {
          const index = next++;
          await send(agent, bodyOf(index), performance.now());
        }
      }),
    );
  } else {
    const total = Math.min(request.maxRequests, Math.floor(request.rate * request.seconds));
    const pending: Promise<void>[] = [];
    for (let index = 0; index < total; index++) {
      const due = started + (index / request.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(send(agents[index % agents.length] ?? new http.Agent(), bodyOf(index), due));
    }
    await Promise.all(pending);
  }
  for (const agent of agents) agent.destroy();
  latencies.sort((left, right) => left - right);
  lateness.sort((left, right) => left - right);
  return { sent, lateness, latencies, statuses, timeouts, errors, seconds: (performance.now() - started) / 1000 };
}

if (parentPort) {
  const port = parentPort;
  run(workerData as LoadRequest).then(
    (result) => port.postMessage(result),
    (error: unknown) => port.postMessage({ error: String(error) }),
  );
}
