import { describe, expect, it } from 'vitest';
import { cell, formatTable } from './table.js';

describe('cell', () => {
  it('writes integers whole, fractions with fixed digits and tiny values in exponent form', () => {
    expect(cell(42)).toBe('42');
    expect(cell(0)).toBe('0');
    expect(cell(0.123456)).toBe('0.1235');
    expect(cell(1.79e-7)).toBe('1.79e-7');
    expect(cell(0.00012, 2)).toBe('1.20e-4');
  });

  it('writes a dash for absent or non-finite values', () => {
    expect(cell(null)).toBe('-');
    expect(cell(undefined)).toBe('-');
    expect(cell(Number.NaN)).toBe('-');
  });
});

describe('formatTable', () => {
  it('right-aligns numeric columns (exponents included) and left-aligns text', () => {
    const table = formatTable(
      ['name', 'value'],
      [
        ['a', '1.79e-7'],
        ['long', '12'],
      ],
    ).split('\n');
    expect(table[2]).toBe('a     1.79e-7');
    expect(table[3]).toBe('long       12');
  });
});
