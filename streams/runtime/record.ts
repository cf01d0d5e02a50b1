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
  /**
   * Arrival order within the partition: the `sluice.seq` header that fused pipelines stamp on the
   * records they write (their offsets are unknown while they are processed), else the offset.
   */
  readonly sequence: number;
  /**
   * Shared by the stages of one task that read this same record, in pipeline order: an upstream
   * stage leaves what it computed (the features of this very event) for a downstream one. Made on
   * first use (a getter): a copy of the record made with spread does not carry it.
   */
  readonly scratch: Map<string, unknown>;
  /** The bytes as they arrived, for dead letters and pass-through. */
  readonly raw: RawRecord;
}

/** The header a fused pipeline stamps with a record's arrival sequence in its partition. */
export const SEQUENCE_HEADER = 'sluice.seq';

/** A record's arrival order: its `sluice.seq` header when present, else its offset. */
export function sequenceOf(raw: Pick<RawRecord, 'offset' | 'headers'>): number {
  const stamped = raw.headers[SEQUENCE_HEADER];
  return stamped === undefined ? Number(raw.offset) : Number(stamped);
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
  if (raw === undefined) return headers;
  // for...in over an own-keys object: no entries array per record (most records have no headers).
  for (const name in raw) {
    if (!Object.hasOwn(raw, name)) continue;
    const value = raw[name];
    if (value === undefined || value === null) continue;
    const first: unknown = Array.isArray(value) ? value[0] : value;
    headers[name] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return headers;
}
