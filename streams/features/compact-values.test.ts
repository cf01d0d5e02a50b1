import { describe, expect, it } from 'vitest';
import { compactNumber, sharedString } from './compact-values.js';

describe('sharedString', () => {
  it('gives an equal string, the same for equal inputs', () => {
    const first = sharedString(['m', '-', '42'].join(''));
    const second = sharedString(`m-${40 + 2}`);
    expect(first).toBe('m-42');
    expect(second).toBe('m-42');
  });

  it('leaves long strings and the empty string as they are', () => {
    const long = 'x'.repeat(500);
    expect(sharedString(long)).toBe(long);
    expect(sharedString('')).toBe('');
  });

  it('keeps answering correctly after its table starts again', () => {
    for (let index = 0; index < 70_000; index++) expect(sharedString(`id-${index}`)).toBe(`id-${index}`);
    expect(sharedString('id-5')).toBe('id-5');
  });
});

describe('compactNumber', () => {
  it('keeps every number equal, -0 and fractions included', () => {
    for (const value of [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, 1.5, -0.25, Number.NaN, Infinity, -Infinity])
      expect(Object.is(compactNumber(value), value)).toBe(true);
    expect(Object.is(compactNumber(-0), -0)).toBe(true);
  });
});
