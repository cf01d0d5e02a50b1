import { describe, expect, it } from 'vitest';
import { avroType } from './logical-types.js';
import { deriveEventsSchema, readAvroSchema, SourceSchemaError } from './source-schemas.js';

const raw = readAvroSchema(new URL('../examples/fraud/schemas/raw.transactions.avsc', import.meta.url));

describe('events schemas derived from a source raw schema', () => {
  it('keeps the raw fields and appends the envelope, with named types under their own namespace', () => {
    const events = deriveEventsSchema(raw, 'transactions');
    expect(events.name).toBe('TransactionEvent');
    expect(events.fields.map((field) => field.name)).toEqual([
      ...raw.fields.map((field) => field.name),
      'event_id',
      'event_time',
      'ingest_time',
    ]);
    const channel = events.fields.find((field) => field.name === 'channel')?.type as { namespace?: string; name: string };
    expect(`${channel.namespace}.${channel.name}`).toBe('dev.sluice.demo.Channel');
    const value = {
      transaction_id: 't',
      card_id: 'c',
      merchant_id: 'm',
      merchant_category: '5411',
      amount: 12.5,
      currency: 'EUR',
      country: 'NL',
      channel: 'ONLINE',
      timestamp: 1,
      event_id: 'x',
      event_time: 1,
      ingest_time: 2,
    };
    expect(avroType(events).isValid(value)).toBe(true);
  });

  it('refuses a raw field that takes an envelope name, and a schema that is not a record', () => {
    expect(() => deriveEventsSchema({ ...raw, fields: [...raw.fields, { name: 'event_id', type: 'string' }] }, 'x')).toThrow(
      /reserved for the events envelope/,
    );
    expect(() => readAvroSchema('/nonexistent/raw.avsc')).toThrow(SourceSchemaError);
  });
});
