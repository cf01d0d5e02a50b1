import http from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';
import { describe, expect, it, vi } from 'vitest';
import { DeserializationError } from './errors.js';
import { avroType } from './logical-types.js';
import { AvroSerde, readSchemaId } from './serde.js';
import { loadAvsc, platformSubjects } from './catalog.js';
import demo from '../examples/fraud/sluice.config.js';

describe('decimal logical type', () => {
  const type = avroType({
    type: 'record',
    name: 'Money',
    fields: [{ name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } }],
  });

  it.each([0, 12.34, -12.34, 0.01, 9_999_999_999.99, -9_999_999_999.99, 127, 128, -128, -129])('round-trips %d exactly', (amount) => {
    expect(type.fromBuffer(type.toBuffer({ amount }))).toEqual({ amount });
  });

  it("encodes two's complement big-endian unscaled values, as the Avro spec says", () => {
    // 1.28 -> unscaled 128 -> 0x0080 (two bytes: a leading zero keeps it positive)
    expect(type.toBuffer({ amount: 1.28 }).subarray(1).toString('hex')).toBe('0080');
    expect(type.toBuffer({ amount: -1.28 }).subarray(1).toString('hex')).toBe('80');
    expect(type.toBuffer({ amount: -1.29 }).subarray(1).toString('hex')).toBe('ff7f');
  });

  it('refuses values that do not fit the precision', () => {
    expect(() => type.toBuffer({ amount: 10_000_000_000 })).toThrow(/does not fit decimal\(12, 2\)/);
    expect(type.isValid({ amount: Number.NaN })).toBe(false);
  });
});

describe('readSchemaId', () => {
  it('reads the big-endian id after the magic byte', () => {
    expect(readSchemaId(Buffer.from([0, 0, 0, 1, 2, 0x42]))).toBe(258);
  });

  it.each([
    [Buffer.from([1, 0, 0, 0, 1, 0]), 'SLUICE_WIRE_MAGIC_BYTE'],
    [Buffer.from([0, 0, 0]), 'SLUICE_WIRE_TOO_SHORT'],
    [Buffer.from('{"json":true}'), 'SLUICE_WIRE_MAGIC_BYTE'],
  ])('rejects %j', (bytes, code) => {
    expect(() => readSchemaId(bytes)).toThrow(DeserializationError);
    try {
      readSchemaId(bytes);
    } catch (error) {
      expect((error as DeserializationError).code).toBe(code);
    }
  });
});

describe('the project contracts', () => {
  it('every platform subject has a valid schema with documentation', () => {
    const subjects = platformSubjects('');
    // The platform's own topics only: sources, views and models come from the topology.
    expect(subjects.map(({ subject }) => subject.split('.')[0])).not.toContain('raw');
    for (const { schema, file } of subjects) {
      expect(() => avroType(schema), file).not.toThrow();
      expect((schema as { doc?: string }).doc, file).toMatch(/\w+/);
    }
  });

  it('events keep every field of their raw source and add the envelope', () => {
    for (const source of demo.sources) {
      const names = source.eventsSchema.fields.map((field) => field.name);
      expect(names).toEqual([...source.rawSchema.fields.map((field) => field.name), 'event_id', 'event_time', 'ingest_time']);
      expect(() => avroType(source.eventsSchema)).not.toThrow();
    }
  });

  it('features and predictions contracts parse too', () => {
    expect(() => avroType(loadAvsc('features'))).not.toThrow();
    expect(() => avroType(loadAvsc('predictions'))).not.toThrow();
  });
});

describe('AvroSerde schema lookups', () => {
  it('fetches and parses a writer schema once however many records need it at once, and frames like the Confluent client', async () => {
    const schema = { type: 'record', name: 'Point', fields: [{ name: 'x', type: 'long' }] };
    let lookups = 0;
    // The registry's one route the serde uses: GET /schemas/ids/<id>.
    const server = http.createServer((request, response) => {
      lookups++;
      expect(request.url).toMatch(/^\/schemas\/ids\/7/);
      setTimeout(() => {
        response.writeHead(200, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
        response.end(JSON.stringify({ schema: JSON.stringify(schema) }));
      }, 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const serde = new AvroSerde(`http://127.0.0.1:${port}`);
      // Before the schema is loaded, the promise-free forms answer with promises (they wait for it).
      expect(serde.isPrepared([7])).toBe(false);
      const first = serde.encodeNow(7, { x: 5 });
      expect(first).toBeInstanceOf(Promise);
      // Counts the parses of the registry's answer (the client parses a schema per waiting caller).
      const parses = vi.spyOn(avro.Type, 'forSchema');
      const encoded = await Promise.all(Array.from({ length: 200 }, (_, x) => serde.encode(7, { x })));
      const decoded = await Promise.all(encoded.map((message) => serde.decode(message)));
      expect(lookups).toBe(1);
      expect(parses.mock.calls.filter(([parsed]) => (parsed as { name?: string }).name === 'Point')).toHaveLength(1);
      parses.mockRestore();
      expect(decoded.map((value) => (value as { x: number }).x)).toEqual(Array.from({ length: 200 }, (_, x) => x));
      // Magic byte, big-endian id, then the Avro body.
      expect(encoded[3]?.toString('hex')).toBe(`00000000070${(3 * 2).toString(16)}`);
      await expect(serde.encode(7, { x: 'not a long' })).rejects.toThrow(/invalid "long"/);
      // Once loaded: the same bytes and values without a promise, and the same error for a bad value.
      expect(serde.isPrepared([7])).toBe(true);
      expect(serde.isPrepared([7, 8])).toBe(false);
      expect(await first).toEqual(encoded[5]);
      const now = serde.encodeNow(7, { x: 3 });
      expect(now).toBeInstanceOf(Buffer);
      expect(now).toEqual(encoded[3]);
      expect(serde.decodeNow(now as Buffer)).toEqual({ x: 3 });
      await expect(serde.encodeNow(7, { x: 'not a long' })).rejects.toThrow(/invalid "long"/);
      expect(() => serde.decodeNow(Buffer.from([1, 0, 0, 0, 7]))).toThrow(DeserializationError);
    } finally {
      server.close();
    }
  });

  it('frames values larger than its scratch buffer, and small ones after them, byte for byte as avsc encodes them', async () => {
    const schema = { type: 'record', name: 'Blob', fields: [{ name: 'text', type: 'string' }] };
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
      response.end(JSON.stringify({ schema: JSON.stringify(schema) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const serde = new AvroSerde(`http://127.0.0.1:${port}`);
      const type = avro.Type.forSchema(schema as avro.Schema);
      for (const length of [10, 65_530, 70_000, 300_000, 3, 131_072]) {
        const value = { text: 'é'.repeat(length) };
        const framed = await serde.encode(9, value);
        expect(framed.subarray(0, 5).toString('hex')).toBe('0000000009');
        expect(framed.subarray(5).equals(type.toBuffer(value)), String(length)).toBe(true);
      }
    } finally {
      server.close();
    }
  });
});
