import avro from 'avsc';

/**
 * Avro `decimal` (on bytes) as a JavaScript number with the schema's scale: amounts such as
 * 12.34 round-trip exactly for the precisions we use (up to 15 significant digits).
 * Timestamps (`timestamp-millis`) stay plain numbers of epoch milliseconds.
 */
export class DecimalType extends avro.types.LogicalType {
  private readonly scale: number;
  private readonly precision: number;

  constructor(schema: avro.Schema, options?: object) {
    super(schema, options);
    const attributes = schema as { precision?: number; scale?: number };
    this.precision = attributes.precision ?? 38;
    this.scale = attributes.scale ?? 0;
    if (this.precision > 15) throw new Error(`decimal precision ${this.precision} exceeds what a JavaScript number holds exactly (15)`);
  }

  /** For messages: what a JSON producer should send. */
  describe(): string {
    return `a number (decimal(${this.precision}, ${this.scale}))`;
  }

  protected override _fromValue(bytes: Buffer): number {
    return unscaledOf(bytes) / 10 ** this.scale;
  }

  protected override _toValue(value: unknown): Buffer {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`not a finite number: ${String(value)}`);
    // An integer below 10^15 in magnitude (the precision's bound) when it fits: exact as a number.
    const unscaled = Math.round(value * 10 ** this.scale);
    const bound = 10 ** this.precision;
    if (!(unscaled < bound && unscaled > -bound)) throw new Error(`${value} does not fit decimal(${this.precision}, ${this.scale})`);
    return twosComplementOf(unscaled);
  }

  protected override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (type instanceof DecimalType && type.scale === this.scale) return (value) => value;
    return undefined;
  }

  protected override _export(schema: avro.Schema): void {
    Object.assign(schema, { precision: this.precision, scale: this.scale });
  }
}

/**
 * The most bytes Buffer's integer reads and writes take (48 bits); a decimal of precision 15 may need
 * 7 (10^15 is about 2^50), which go through BigInt. Every record with a decimal went through BigInt
 * and a hex string before: about 7% of an exactly-once stateless stage's CPU profile
 * (`npm run bench -- runtime`) for one decimal field.
 */
const FAST_BYTES = 6;

/** The unscaled integer of a decimal's bytes: two's complement, big-endian, any length (none is 0). */
export function unscaledOf(bytes: Buffer): number {
  if (bytes.length === 0) return 0;
  if (bytes.length <= FAST_BYTES) return bytes.readIntBE(0, bytes.length);
  return Number(BigInt.asIntN(bytes.length * 8, BigInt(`0x${bytes.toString('hex')}`)));
}

/** A safe integer's shortest two's complement, big-endian (the bytes Avro's spec asks for). */
export function twosComplementOf(value: number): Buffer {
  for (let bytes = 1; bytes <= FAST_BYTES; bytes++) {
    const limit = 2 ** (bytes * 8 - 1);
    if (value < limit && value >= -limit) {
      const out = Buffer.allocUnsafe(bytes);
      out.writeIntBE(value, 0, bytes);
      return out;
    }
  }
  const big = BigInt(value);
  let bytes = FAST_BYTES + 1;
  while (big >= 1n << BigInt(bytes * 8 - 1) || big < -(1n << BigInt(bytes * 8 - 1))) bytes++;
  return Buffer.from(
    BigInt.asUintN(bytes * 8, big)
      .toString(16)
      .padStart(bytes * 2, '0'),
    'hex',
  );
}

/** The logical types every sluice Avro type is built with. */
export const LOGICAL_TYPES = { decimal: DecimalType } as const;

/** Builds an avsc Type with sluice's logical types. */
export function avroType(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { logicalTypes: LOGICAL_TYPES });
}
