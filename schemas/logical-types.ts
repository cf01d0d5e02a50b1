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
    if (bytes.length === 0) return 0;
    const unsigned = BigInt(`0x${bytes.toString('hex')}`);
    const signed = BigInt.asIntN(bytes.length * 8, unsigned);
    return Number(signed) / 10 ** this.scale;
  }

  protected override _toValue(value: unknown): Buffer {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`not a finite number: ${String(value)}`);
    const unscaled = BigInt(Math.round(value * 10 ** this.scale));
    if (unscaled >= 10n ** BigInt(this.precision) || unscaled <= -(10n ** BigInt(this.precision))) {
      throw new Error(`${value} does not fit decimal(${this.precision}, ${this.scale})`);
    }
    return twosComplement(unscaled);
  }

  protected override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    if (type instanceof DecimalType && type.scale === this.scale) return (value) => value;
    return undefined;
  }

  protected override _export(schema: avro.Schema): void {
    Object.assign(schema, { precision: this.precision, scale: this.scale });
  }
}

function twosComplement(value: bigint): Buffer {
  let bytes = 1;
  while (value >= 1n << BigInt(bytes * 8 - 1) || value < -(1n << BigInt(bytes * 8 - 1))) bytes++;
  const unsigned = BigInt.asUintN(bytes * 8, value);
  return Buffer.from(unsigned.toString(16).padStart(bytes * 2, '0'), 'hex');
}

/** The logical types every sluice Avro type is built with. */
export const LOGICAL_TYPES = { decimal: DecimalType } as const;

/** Builds an avsc Type with sluice's logical types. */
export function avroType(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { logicalTypes: LOGICAL_TYPES });
}
