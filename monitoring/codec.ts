/**
 * A little-endian binary writer and reader for monitoring state and partial summaries: numbers as
 * float64 (counts stay exact below 2^53), small integers as uint32, byte strings and strings with a
 * uint32 length. Readers throw RangeError on truncated input, so a store's serde can reject foreign
 * bytes instead of decoding garbage.
 */
export class BinaryWriter {
  private chunks: Buffer[] = [];
  private current = Buffer.alloc(4_096);
  private offset = 0;

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.current.length) return;
    this.chunks.push(this.current.subarray(0, this.offset));
    this.current = Buffer.alloc(Math.max(4_096, bytes));
    this.offset = 0;
  }

  u8(value: number): this {
    this.reserve(1);
    this.offset = this.current.writeUInt8(value, this.offset);
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.offset = this.current.writeUInt32LE(value, this.offset);
    return this;
  }

  f64(value: number): this {
    this.reserve(8);
    this.offset = this.current.writeDoubleLE(value, this.offset);
    return this;
  }

  numbers(values: readonly number[]): this {
    this.u32(values.length);
    for (const value of values) this.f64(value);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.reserve(value.length);
    this.current.set(value, this.offset);
    this.offset += value.length;
    return this;
  }

  string(value: string): this {
    return this.bytes(Buffer.from(value, 'utf8'));
  }

  finish(): Buffer {
    return Buffer.concat([...this.chunks, this.current.subarray(0, this.offset)]);
  }
}

export class BinaryReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length)
      throw new RangeError(`truncated: ${bytes} bytes wanted at ${this.offset} of ${this.buffer.length}`);
  }

  u8(): number {
    this.need(1);
    const value = this.buffer.readUInt8(this.offset);
    this.offset += 1;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.buffer.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  numbers(): number[] {
    const length = this.u32();
    this.need(8 * length);
    const values = new Array<number>(length);
    for (let index = 0; index < length; index++) values[index] = this.f64();
    return values;
  }

  bytes(): Buffer {
    const length = this.u32();
    this.need(length);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  string(): string {
    const length = this.u32();
    this.need(length);
    // Decoded in place: a view of the bytes first (bytes()) costs about as much as the decoding.
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  get done(): boolean {
    return this.offset === this.buffer.length;
  }
}
