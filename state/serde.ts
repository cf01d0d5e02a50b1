/** How a store turns values into bytes and back; `deserialize` throws on bytes it cannot read. */
export interface Serde<V> {
  serialize(value: V): Buffer;
  deserialize(bytes: Buffer): V;
}

/** JSON values (numbers, strings, plain objects, arrays). */
export function jsonSerde<V>(): Serde<V> {
  return {
    serialize: (value) => Buffer.from(JSON.stringify(value)),
    deserialize: (bytes) => JSON.parse(bytes.toString('utf8')) as V,
  };
}

/** Integers as 8-byte big-endian signed values: counters. Anything else is rejected. */
export const int64Serde: Serde<number> = {
  serialize: (value) => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64BE(BigInt(Math.trunc(value)));
    return bytes;
  },
  deserialize: (bytes) => {
    if (bytes.length !== 8) throw new Error(`expected 8 bytes of int64, got ${bytes.length}`);
    return Number(bytes.readBigInt64BE());
  },
};
