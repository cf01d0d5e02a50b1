/**
 * One record shape through every stage: key, value, headers, event time, and where it came from
 * (topic, partition, offset). Stages transform StreamRecords into OutputRecords.
 */
export type Headers = Readonly<Record<string, string>>;

/** A Kafka message as consumed, before decoding. */
export interface RawRecord {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offsets are 64-bit: kept as decimal strings, as kafkajs gives them. */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Headers;
  /** The message's Kafka timestamp (ms). */
  readonly timestamp: number;
}

/** A decoded record with its event time. */
export interface StreamRecord<V> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: V;
  readonly headers: Headers;
  readonly timestamp: number;
  readonly eventTime: number;
  /** The bytes as they arrived, for dead letters and pass-through. */
  readonly raw: RawRecord;
}

/** What a stage produces: already encoded (see the encoders in sink.ts). */
export interface OutputRecord {
  readonly topic: string;
  /** Only for changelogs, which follow their input partition; otherwise the key decides. */
  readonly partition?: number;
  readonly key: string | Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, string | Buffer>>;
  /** Defaults to the broker's time of append. */
  readonly timestamp?: number;
}

/** Flattens kafkajs headers (values may be Buffers or arrays of them) into strings. */
export function headersOf(raw: Readonly<Record<string, unknown>> | undefined): Headers {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    if (value === undefined || value === null) continue;
    const first: unknown = Array.isArray(value) ? value[0] : value;
    headers[name] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return headers;
}
