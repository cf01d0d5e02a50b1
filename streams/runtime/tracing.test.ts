import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childSpan } from '../../common/tracing.js';
import { startTracing, type Tracing } from '../../common/tracing-sdk.js';
import type { OutputRecord, RawRecord, StreamRecord } from './record.js';
import { traceCommit, traceRecord } from './tracing.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

function recordWith(headers: Record<string, string>): StreamRecord<unknown> {
  const raw: RawRecord = { topic: 't', partition: 0, offset: '7', key: null, value: null, headers, timestamp: 0 };
  return { ...raw, key: null, value: {}, eventTime: 0, sequence: 7, scratch: new Map(), raw };
}

describe('childSpan without tracing', () => {
  it('runs the work and returns its value, sync or async', async () => {
    expect(childSpan('x', () => 3)).toBe(3);
    await expect(childSpan('x', () => Promise.resolve(4))).resolves.toBe(4);
    expect(() =>
      childSpan('x', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
  });
});

describe('traceRecord', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;

  beforeAll(() => {
    tracing = startTracing({ serviceName: 'unit', exporter, simple: true });
  });
  afterAll(() => tracing.shutdown());

  it('continues the record trace, nests child spans, and puts its context on every output', async () => {
    exporter.reset();
    const outputs: OutputRecord[] = [
      { topic: 'a', key: 'k', value: null, headers: { keep: 'me' } },
      { topic: 'b', key: 'k', value: null },
    ];
    const traced = await traceRecord(tracing.tracer, 'stage-x', recordWith({ traceparent: `00-${TRACE}-${PARENT}-01` }), async () => {
      await childSpan('inner', () => Promise.resolve(1));
      return outputs;
    });
    const spans = exporter.getFinishedSpans();
    const stage = spans.find((span) => span.name === 'stage-x')!;
    const inner = spans.find((span) => span.name === 'inner')!;
    expect(stage.spanContext().traceId).toBe(TRACE);
    expect(stage.parentSpanContext?.spanId).toBe(PARENT);
    expect(inner.parentSpanContext?.spanId).toBe(stage.spanContext().spanId);
    expect(traced.map((output) => output.headers?.traceparent)).toEqual([
      `00-${TRACE}-${stage.spanContext().spanId}-01`,
      `00-${TRACE}-${stage.spanContext().spanId}-01`,
    ]);
    expect(traced[0]?.headers?.keep).toBe('me');
  });

  it('starts a new trace for a record without a traceparent, and marks a failure', async () => {
    exporter.reset();
    await expect(traceRecord(tracing.tracer, 'stage-y', recordWith({}), () => Promise.reject(new Error('bad record')))).rejects.toThrow(
      'bad record',
    );
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('stage-y');
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.status.code).toBe(2);
  });

  it('traces a commit as a root span', async () => {
    exporter.reset();
    await traceRecord(tracing.tracer, 'stage-z', recordWith({ traceparent: `00-${TRACE}-${PARENT}-01` }), async () => {
      await traceCommit(tracing.tracer, 'task.0', 3, () => Promise.resolve());
      return [];
    });
    const commit = exporter.getFinishedSpans().find((span) => span.name === 'commit')!;
    expect(commit.parentSpanContext).toBeUndefined();
    expect(commit.attributes['sluice.records']).toBe(3);
  });
});
