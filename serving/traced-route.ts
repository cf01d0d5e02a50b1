import { SpanKind, type Tracer } from '@opentelemetry/api';
import { extractTraceContext, failSpan, trace, traceHeaders } from '../common/tracing.js';
import type { OpsRoute } from './ops-server.js';

/**
 * An ops route traced: a server span per request it answers, child of the request's `traceparent`,
 * with the span's own `traceparent` in the response (so a caller can find the trace of its
 * prediction). Spans inside (scoring) are its children.
 */
export function tracedRoute(tracer: Tracer, pathPrefix: string, route: OpsRoute): OpsRoute {
  return (request, url) => {
    if (!url.pathname.startsWith(pathPrefix)) return route(request, url);
    const headers: Record<string, string> = {};
    for (const name of ['traceparent', 'tracestate']) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const parent = extractTraceContext(headers);
    const name = `${request.method ?? 'GET'} /${url.pathname.split('/')[1] ?? ''}`;
    return tracer.startActiveSpan(name, { kind: SpanKind.SERVER, attributes: { 'url.path': url.pathname } }, parent, async (span) => {
      try {
        const answer = await route(request, url);
        if (!answer) {
          // Not this route's request: nothing was traced.
          span.setAttribute('sluice.unanswered', true);
          span.end();
          return undefined;
        }
        span.setAttribute('http.response.status_code', answer.status);
        span.end();
        return { ...answer, headers: { ...answer.headers, ...traceHeaders(trace.setSpan(parent, span)) } };
      } catch (error) {
        failSpan(span, error);
        throw error;
      }
    });
  };
}
