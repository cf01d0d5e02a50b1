import { describe, expect, it } from 'vitest';
import { transactions } from '../../examples/fraud/sources.js';
import { checkQuality } from './quality.js';

const now = 1_800_000_000_000;
const clean = { transaction_id: 't', card_id: 'c', merchant_id: 'm', amount: 10, currency: 'EUR', country: 'NL', timestamp: now - 1_000 };

describe('checkQuality', () => {
  it('passes a clean record', () => {
    expect(checkQuality(transactions, clean, now)).toEqual([]);
  });

  it.each([
    [{ card_id: '' }, 'card_id', 'MISSING'],
    [{ card_id: null }, 'card_id', 'MISSING'],
    [{ amount: 0 }, 'amount', 'OUT_OF_RANGE'],
    [{ amount: 2_000_000 }, 'amount', 'OUT_OF_RANGE'],
    [{ amount: 'ten' }, 'amount', 'INVALID_TYPE'],
    [{ currency: 'euro' }, 'currency', 'OUT_OF_RANGE'],
    [{ timestamp: now + 2 * 86_400_000 }, 'timestamp', 'FUTURE_TIMESTAMP'],
    [{ timestamp: -5 }, 'timestamp', 'INVALID_TYPE'],
  ])('flags %j as %s %s', (change, field, check) => {
    expect(checkQuality(transactions, { ...clean, ...change }, now)).toEqual([expect.objectContaining({ field, check })]);
  });

  it('reports every violation of a record', () => {
    expect(checkQuality(transactions, { ...clean, card_id: '', amount: -1 }, now).map((violation) => violation.field)).toEqual([
      'card_id',
      'amount',
    ]);
  });
});
