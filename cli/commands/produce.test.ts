import { describe, expect, it } from 'vitest';
import { transactions } from '../../examples/fraud/sources.js';
import { parseCsv, typedBySchema } from './produce.js';

describe('CSV input of sluice produce', () => {
  it('reads a header, quoted fields with commas and "" escapes, and CRLF lines; empty cells are left out', () => {
    const rows = parseCsv('transaction_id,card_id,amount,merchant_id\r\nt1,c1,12.50,"m, ""quoted"""\r\nt2,c2,-3,\n\n');
    expect(rows).toEqual([
      { transaction_id: 't1', card_id: 'c1', amount: '12.50', merchant_id: 'm, "quoted"' },
      { transaction_id: 't2', card_id: 'c2', amount: '-3' },
    ]);
    expect(parseCsv('')).toEqual([]);
  });

  it('types cells by the raw schema: numbers where the field is numeric, text where it is a string', () => {
    const [row] = parseCsv('transaction_id,merchant_category,amount,timestamp\n42,5411,12.5,1700000000000\n');
    expect(typedBySchema(row!, transactions.rawSchema)).toEqual({
      transaction_id: '42',
      merchant_category: '5411',
      amount: 12.5,
      timestamp: 1700000000000,
    });
  });

  it('reads ISO times in timestamp fields, booleans, nullable unions, and leaves what does not parse for ingest to reject', () => {
    const schema = {
      type: 'record',
      name: 'Trip',
      fields: [
        { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'shared', type: 'boolean' },
        { name: 'tip', type: ['null', 'double'] },
        { name: 'zone', type: 'string' },
      ],
    };
    expect(typedBySchema({ at: '2001-01-10T12:00:00Z', shared: 'true', tip: '1.5', zone: '12' }, schema)).toEqual({
      at: Date.UTC(2001, 0, 10, 12),
      shared: true,
      tip: 1.5,
      zone: '12',
    });
    expect(typedBySchema({ at: 'soon', shared: 'yes' }, schema)).toEqual({ at: 'soon', shared: 'yes' });
  });
});
