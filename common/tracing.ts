import { context, propagation, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * Trace context across topics and requests: the W3C `traceparent`/`tracestate` pair, carried in
 * Kafka record headers and HTTP headers. Tracing is off unless an entry point starts it
 * (common/tracing-sdk.ts); off, these helpers do nothing beyond one lookup of the active span.
 */
export const TRACER_NAME = 'sluice';

const w3c = new W3CTraceContextPropagator();

type Carrier = Record<string, string | undefined>;

const getter = {
  get: (carrier: Readonly<Carrier>, key: string) => carrier[key],
  keys: (carrier: Readonly<Carrier>) => Object.keys(carrier),
};

/** The context a record's or request's `traceparent` header names (the root context without one). */
export function extractTraceContext(headers: Readonly<Carrier>, parent: Context = context.active()): Context {
  return w3c.extract(parent, headers, getter);
}

/** The `traceparent` (and `tracestate`) headers of a context's span; empty when it has none. */
export function traceHeaders(of: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  w3c.inject(of, carrier, {
    set: (target: Record<string, string>, key: string, value: string) => {
      target[key] = value;
    },
  });
  return carrier;
}

/** Ends a span as failed with the error. */
export function failSpan(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/**
 * Runs `work` in a span that is a child of the active one (a state read, scoring). Without an
 * active span — tracing off, or outside a traced record — it just runs `work`.
 */
export function childSpan<T>(name: string, work: () => T, attributes?: Attributes): T {
  if (trace.getActiveSpan() === undefined) return work();
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, attributes ? { attributes } : {}, (span): T => {
    try {
      const result = work();
      if (result instanceof Promise) {
        return result.then(
          (value: unknown) => {
            span.end();
            return value;
          },
          (error: unknown) => {
            failSpan(span, error);
            throw error;
          },
        ) as T;
      }
      span.end();
      return result;
    } catch (error) {
      failSpan(span, error);
      throw error;
    }
  });
}

/** The trace and span ids of the active span, for log lines; empty when there is none. */
export function activeTraceIds(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

export { propagation, trace, type Tracer };
