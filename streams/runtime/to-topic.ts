import { concatMap, type OperatorFunction } from 'rxjs';
import type { AvroSerde } from '../../schemas/index.js';
import type { OutputRecord } from './record.js';

/** A value on its way to a topic, before encoding. */
export interface Keyed<V> {
  readonly key: string | null;
  readonly value: V;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timestamp?: number;
}

/**
 * The sink operator: encodes each value with a registered schema (Confluent wire format, the
 * schema id cached by the serde) into an OutputRecord for `topic`. The runtime then produces the
 * outputs batched, with the idempotent (or transactional) producer, when it commits.
 *
 *     process: (record) => of({ key: record.key, value: enrich(record.value) }).pipe(toTopic('events.x', serde, id))
 */
export function toTopic<V>(topic: string, serde: AvroSerde, schemaId: number): OperatorFunction<Keyed<V>, OutputRecord> {
  return concatMap(async (item) => ({
    topic,
    key: item.key,
    value: await serde.encode(schemaId, item.value),
    ...(item.headers ? { headers: item.headers } : {}),
    ...(item.timestamp === undefined ? {} : { timestamp: item.timestamp }),
  }));
}

/** Raw bytes (or a string) to a topic, for stages that produce their own encoding. */
export function toTopicRaw(topic: string): OperatorFunction<Keyed<Buffer | string | null>, OutputRecord> {
  return concatMap((item) => [
    {
      topic,
      key: item.key,
      value: typeof item.value === 'string' ? Buffer.from(item.value) : item.value,
      ...(item.headers ? { headers: item.headers } : {}),
      ...(item.timestamp === undefined ? {} : { timestamp: item.timestamp }),
    },
  ]);
}
