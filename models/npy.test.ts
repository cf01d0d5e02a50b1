import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, NpyFormatError } from './npy.js';

describe('.npy files', () => {
  it('writes format 1.0 with the data at a multiple of 64 bytes, and reads it back exactly (NaN included)', () => {
    const values = Float32Array.from([1.5, Number.NaN, -0, 3.4028234663852886e38, 1e-45, 7]);
    const bytes = encodeNpy(values, [3, 2]);
    expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes[8]! + bytes[9]! * 256;
    expect((10 + headerLength) % 64).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 2\), \} *\n$/);
    const back = decodeNpy(bytes);
    expect(back.shape).toEqual([3, 2]);
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(values.buffer))).toBe(true);
    expect(new TextDecoder().decode(encodeNpy(Float32Array.from([1, 2]), [2]).subarray(10, 74))).toContain("'shape': (2,)");
  });

  it('refuses what it cannot read', () => {
    expect(() => encodeNpy(Float32Array.from([1, 2, 3]), [2, 2])).toThrow(/holds 4 values, got 3/);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]))).toThrow(NpyFormatError);
    const bytes = encodeNpy(Float32Array.from([1, 2]), [2]);
    expect(() => decodeNpy(bytes.subarray(0, bytes.length - 1))).toThrow(/needs 8 bytes/);
    const doubles = Uint8Array.from(bytes);
    doubles[Buffer.from(doubles).indexOf('<f4') + 2] = '8'.charCodeAt(0);
    expect(() => decodeNpy(doubles)).toThrow(/float32/);
  });
});
