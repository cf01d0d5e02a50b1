import { describe, expect, it } from 'vitest';
import { DeserializationError } from './errors.js';
import { transactions } from '../examples/fraud/sources.js';
import { parseJsonRecord, SchemaViolationError } from './decode.js';
import { avroType } from './logical-types.js';

const transaction = avroType(transactions.rawSchema);
const valid = {
  transaction_id: 't1',
  card_id: 'c1',
  merchant_id: 'm1',
  merchant_category: '5411',
  amount: 12.5,
  currency: 'EUR',
  country: 'NL',
  timestamp: 1_700_000_000_000,
};
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('parseJsonRecord', () => {
  it('accepts a matching object and fills defaults', () => {
    expect(parseJsonRecord(json(valid), transaction)).toEqual({ ...valid, channel: 'UNKNOWN' });
  });

  it('names every field with a wrong type or missing', () => {
    try {
      parseJsonRecord(json({ ...valid, amount: 'twelve', card_id: undefined, channel: 'TELEPATHY' }), transaction);
      throw new Error('expected a violation');
    } catch (error) {
      expect(error).toBeInstanceOf(SchemaViolationError);
      const fields = (error as SchemaViolationError).violations.map((violation) => violation.field);
      expect(fields).toEqual(expect.arrayContaining(['amount', 'card_id', 'channel']));
      expect((error as SchemaViolationError).message).toMatch(/amount is "twelve", expected a number \(decimal\(12, 2\)\)/);
    }
  });

  it.each([
    [Buffer.from('{"amount": '), 'SLUICE_UNDECODABLE'],
    [Buffer.from([0xff, 0xfe, 0x01]), 'SLUICE_UNDECODABLE'],
    [json([1, 2]), 'SLUICE_JSON_NOT_OBJECT'],
    [json('text'), 'SLUICE_JSON_NOT_OBJECT'],
    [json(null), 'SLUICE_JSON_NOT_OBJECT'],
  ])('rejects %s with %s', (bytes, code) => {
    expect(() => parseJsonRecord(bytes, transaction)).toThrow(DeserializationError);
    try {
      parseJsonRecord(bytes, transaction);
    } catch (error) {
      expect((error as DeserializationError).code).toBe(code);
    }
  });
});
