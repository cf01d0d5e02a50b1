import { describe, expect, it } from 'vitest';
import { avroType, twosComplementOf, unscaledOf } from './logical-types.js';

// BigInt references (written apart from the code's own BigInt fallback) the fast forms must agree with byte for byte.
function referenceBytes(value: number): Buffer {
  // The shortest length whose signed range holds the value, then its bytes from the lowest up.
  const big = BigInt(value);
  let length = 1;
  while (!(BigInt.asIntN(length * 8, big) === big)) length++;
  const out = Buffer.alloc(length);
  let rest = BigInt.asUintN(length * 8, big);
  for (let index = length - 1; index >= 0; index--) {
    out[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

function referenceValue(bytes: Buffer): number {
  if (bytes.length === 0) return 0;
  return Number(BigInt.asIntN(bytes.length * 8, BigInt(`0x${bytes.toString('hex')}`)));
}

/** Every integer on either side of each byte length's limits, up to 8 bytes, and precision 15's bounds. */
function edges(): number[] {
  const values = [0, 1, -1, 10 ** 15 - 1, -(10 ** 15 - 1)];
  for (let bytes = 1; bytes <= 7; bytes++) {
    const limit = 2 ** (bytes * 8 - 1);
    values.push(limit - 2, limit - 1, limit, limit + 1, -limit - 1, -limit, -limit + 1);
  }
  return values.filter((value) => Math.abs(value) < 10 ** 15);
}

describe('decimal bytes without BigInt', () => {
  it("writes the shortest two's complement of every edge, as the BigInt form did", () => {
    for (const value of edges()) expect(twosComplementOf(value).toString('hex'), String(value)).toBe(referenceBytes(value).toString('hex'));
  });

  it('writes and reads 20,000 random integers below 10^15 as the BigInt forms did', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let index = 0; index < 20_000; index++) {
      // Magnitudes spread over every byte length: 10^0 to 10^15.
      const value = Math.round((random() - 0.5) * 2 * 10 ** (random() * 15));
      const bytes = twosComplementOf(value);
      expect(bytes.toString('hex')).toBe(referenceBytes(value).toString('hex'));
      expect(unscaledOf(bytes)).toBe(referenceValue(bytes));
      // -0 is written as 0 (both forms), and read back as 0.
      expect(unscaledOf(bytes) === value).toBe(true);
    }
  });

  it('reads longer-than-needed and 7- to 9-byte forms (another writer may pad with sign bytes)', () => {
    for (const hex of [
      '',
      '00',
      'ff',
      '0080',
      'ff7f',
      'ffff80',
      '000000000080',
      'ffffffffff7f',
      '00038d7ea4c67fff',
      'fffc72815b398001',
      '0000000000000000ff',
      'ffffffffffffffff80',
    ])
      expect(unscaledOf(Buffer.from(hex, 'hex')), hex).toBe(referenceValue(Buffer.from(hex, 'hex')));
  });

  it('round-trips decimals of precision 15 at its bounds and every scale', () => {
    for (const scale of [0, 2, 6]) {
      const type = avroType({
        type: 'record',
        name: 'Money',
        fields: [{ name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 15, scale } }],
      });
      for (const unscaled of [10 ** 15 - 1, -(10 ** 15 - 1), 2 ** 47, -(2 ** 47) - 1, 12_345, -1]) {
        const amount = unscaled / 10 ** scale;
        expect(type.fromBuffer(type.toBuffer({ amount })), `${unscaled} at scale ${scale}`).toEqual({ amount });
      }
      expect(() => type.toBuffer({ amount: 10 ** 15 / 10 ** scale })).toThrow(/does not fit decimal\(15, /);
    }
  });
});
