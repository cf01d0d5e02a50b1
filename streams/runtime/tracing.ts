import { ROOT_CONTEXT, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import { extractTraceContext, failSpan, traceHeaders } from '../../common/tracing.js';
import type { OutputRecord, StreamRecord } from './record.js';

/**
 * A stage's work on one record as a span: its parent is the `traceparent` of the record's headers
 * (the producer's, or the upstream stage's), and every record it outputs carries this span's
 * context on — to the next topic, or to the next fused stage in memory. Spans opened inside
 * (state reads, scoring) are its children.
 */
export async function traceRecord(
  tracer: Tracer,
  stage: string,
  record: StreamRecord<unknown>,
  work: () => Promise<readonly OutputRecord[]>,
): Promise<readonly OutputRecord[]> {
  const parent = extractTraceContext(record.headers);
  const attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'process',
    'messaging.destination.name': record.topic,
    'messaging.destination.partition.id': String(record.partition),
    'messaging.kafka.offset': Number(record.offset),
    'sluice.stage': stage,
  };
  return tracer.startActiveSpan(stage, { kind: SpanKind.CONSUMER, attributes }, parent, async (span) => {
    let outputs: readonly OutputRecord[];
    try {
      outputs = await work();
    } catch (error) {
      failSpan(span, error);
      throw error;
    }
    const carried = traceHeaders(trace.setSpan(parent, span));
    span.setAttribute('sluice.outputs', outputs.length);
    span.end();
    return outputs.map((output) => ({ ...output, headers: { ...output.headers, ...carried } }));
  });
}

/** A commit of a task (outputs, changelogs and offsets in one transaction) as a span of its own. */
export async function traceCommit<T>(tracer: Tracer, task: string, records: number, work: () => Promise<T>): Promise<T> {
  // A root span: the commit belongs to no one record.
  return tracer.startActiveSpan(
    'commit',
    { attributes: { 'sluice.task': task, 'sluice.records': records } },
    ROOT_CONTEXT,
    async (span) => {
      try {
        const result = await work();
        span.end();
        return result;
      } catch (error) {
        failSpan(span, error);
        throw error;
      }
    },
  );
}

export type { Tracer };
