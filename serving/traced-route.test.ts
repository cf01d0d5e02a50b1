import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../common/metrics.js';
import { startTracing, type Tracing } from '../common/tracing-sdk.js';
import { serveOps, type OpsServer } from './ops-server.js';
import { tracedRoute } from './traced-route.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('a traced route', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: OpsServer;

  beforeAll(async () => {
    tracing = startTracing({ serviceName: 'unit', exporter, simple: true });
    const predict = tracedRoute(tracing.tracer, '/predict/', (_request, url) =>
      Promise.resolve(url.pathname.startsWith('/predict/') ? { status: 200, body: { score: 0.5 } } : undefined),
    );
    server = await serveOps(createMetricsRegistry(false), { live: () => true, ready: () => true, detail: () => ({}) }, '127.0.0.1', 0, [
      predict,
    ]);
  });

  afterAll(async () => {
    await server.close();
    await tracing.shutdown();
  });

  it("continues the request's trace and answers with its own traceparent", async () => {
    const response = await fetch(`${server.url}/predict/m`, {
      method: 'POST',
      headers: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` },
    });
    expect(await response.json()).toEqual({ score: 0.5 });
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('POST /predict');
    expect(span?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(response.headers.get('traceparent')).toBe(`00-${TRACE}-${span?.spanContext().spanId}-01`);
  });

  it('leaves other paths untraced', async () => {
    exporter.reset();
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
