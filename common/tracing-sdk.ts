import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { SluiceConfig } from './config.js';
import { TRACER_NAME } from './tracing.js';

/** A started tracer provider: the tracer stages use, and its shutdown (flushes what is buffered). */
export interface Tracing {
  readonly tracer: Tracer;
  shutdown(): Promise<void>;
}

/**
 * Registers the OpenTelemetry SDK for this process: async-context propagation, the W3C trace
 * context propagator, and `exporter` (batched; `simple` exports each span as it ends, for tests).
 * The resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, as the SDK does.
 */
export function startTracing(options: {
  readonly serviceName: string;
  readonly exporter: SpanExporter;
  readonly simple?: boolean;
}): Tracing {
  const resource = resourceFromAttributes({ 'service.name': options.serviceName }).merge(detectResources({ detectors: [envDetector] }));
  const processor = options.simple ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(options.exporter);
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/**
 * Tracing as the standard variables ask (see SluiceConfig.tracing): OTLP over HTTP (endpoint,
 * headers and timeouts from OTEL_EXPORTER_OTLP_*, read by the exporter), the console, or none.
 */
export function tracingFromConfig(config: Pick<SluiceConfig, 'tracing'>, serviceName: string): Tracing | undefined {
  switch (config.tracing.exporter) {
    case 'otlp':
      return startTracing({ serviceName: config.tracing.serviceName ?? serviceName, exporter: new OTLPTraceExporter() });
    case 'console':
      return startTracing({ serviceName: config.tracing.serviceName ?? serviceName, exporter: new ConsoleSpanExporter() });
    case 'none':
      return undefined;
  }
}
