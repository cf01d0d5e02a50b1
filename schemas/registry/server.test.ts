import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { encodeRecord } from './records.js';
import { MAX_BODY_BYTES, serveRegistry, type RegistryServer } from './server.js';
import { SchemaRegistryService } from './service.js';
import { RegistryState } from './state.js';

const JSON_TYPE = 'application/vnd.schemaregistry.v1+json';
const schema = JSON.stringify({ type: 'record', name: 'User', fields: [{ name: 'id', type: 'string' }] });

describe('the registry HTTP server', () => {
  let server: RegistryServer;
  let records = 0;

  beforeAll(async () => {
    const state = new RegistryState();
    const service = new SchemaRegistryService(state, (key, value) => {
      state.apply(encodeRecord(key), value, String(records++));
      return Promise.resolve();
    });
    server = await serveRegistry(service, { host: '127.0.0.1', port: 0, logger: silentLogger() });
    const response = await call('POST', '/subjects/users-value/versions', JSON.stringify({ schema }));
    expect(response.status).toBe(200);
  });

  afterAll(async () => {
    await server.close();
  });

  async function call(method: string, path: string, body?: string | Buffer, contentType = JSON_TYPE) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': contentType },
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, contentType: response.headers.get('content-type'), body: JSON.parse(text) as unknown };
  }

  it('listens on loopback', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers Confluent paths with Confluent bodies and content type', async () => {
    const version = await call('GET', '/subjects/users-value/versions/latest');
    expect(version).toMatchObject({ status: 200, contentType: JSON_TYPE, body: { subject: 'users-value', id: 1, version: 1 } });
    expect(await call('GET', '/subjects/users-value/versions/1/schema')).toMatchObject({
      status: 200,
      body: JSON.parse(schema) as unknown,
    });
    expect(await call('GET', '/schemas/ids/1')).toMatchObject({ status: 200, body: { schema } });
    expect(await call('GET', '/schemas/ids/1/schema')).toMatchObject({ status: 200, body: JSON.parse(schema) as unknown });
    expect(await call('GET', '/schemas/ids/1/versions')).toMatchObject({ status: 200, body: [{ subject: 'users-value', version: 1 }] });
    expect(await call('GET', '/schemas/types')).toMatchObject({ status: 200, body: ['AVRO'] });
    expect(await call('GET', '/subjects')).toMatchObject({ status: 200, body: ['users-value'] });
    expect(await call('GET', '/config')).toMatchObject({ status: 200, body: { compatibilityLevel: 'BACKWARD' } });
    expect(await call('POST', '/subjects/users-value', JSON.stringify({ schema }))).toMatchObject({
      status: 200,
      body: { id: 1, version: 1 },
    });
    expect(
      await call('POST', '/compatibility/subjects/users-value/versions/latest?verbose=true', JSON.stringify({ schema })),
    ).toMatchObject({ status: 200, body: { is_compatible: true, messages: [] } });
    expect(
      await call('POST', '/compatibility/subjects/users-value/versions', JSON.stringify({ schema }), 'application/json'),
    ).toMatchObject({ status: 200, body: { is_compatible: true } });
  });

  // [what, request, expected status, expected error_code]
  const badRequests: [string, () => Promise<{ status: number; body: unknown }>, number, number][] = [
    ['malformed JSON', () => call('POST', '/subjects/users-value/versions', '{"schema": '), 400, 400],
    ['a body that is not an object', () => call('POST', '/subjects/users-value/versions', '[1,2]'), 422, 42201],
    [
      'a schema that is not valid Avro',
      () => call('POST', '/subjects/users-value/versions', JSON.stringify({ schema: '{"type":"record","name":"X"}' })),
      422,
      42201,
    ],
    [
      'a schema that is not JSON',
      () => call('POST', '/subjects/users-value/versions', JSON.stringify({ schema: 'record X {}' })),
      422,
      42201,
    ],
    ['an unknown subject', () => call('GET', '/subjects/nobody/versions'), 404, 40401],
    ['an unknown version', () => call('GET', '/subjects/users-value/versions/7'), 404, 40402],
    ['an unknown schema id', () => call('GET', '/schemas/ids/4242'), 404, 40403],
    ['a non-numeric version', () => call('GET', '/subjects/users-value/versions/first'), 422, 42202],
    ['an unknown compatibility level', () => call('PUT', '/config', JSON.stringify({ compatibility: 'SIDEWAYS' })), 422, 42203],
    ['a body over 1 MiB', () => call('POST', '/subjects/users-value/versions', Buffer.alloc(MAX_BODY_BYTES + 10, 0x20)), 413, 413],
    ['a wrong content type', () => call('POST', '/subjects/users-value/versions', JSON.stringify({ schema }), 'text/plain'), 415, 415],
    ['an unknown path', () => call('GET', '/nowhere'), 404, 404],
    ['a wrong method', () => call('PATCH', '/config', '{}'), 405, 405],
    ['broken percent-encoding', () => call('GET', '/subjects/%E0%A4%A/versions'), 400, 400],
  ];

  it.each(badRequests)('answers %s with an error response and changes nothing', async (_what, request, status, errorCode) => {
    const before = records;
    const response = await request();
    expect(response.status).toBe(status);
    expect(response.body).toMatchObject({ error_code: errorCode, message: expect.any(String) as unknown });
    expect(records).toBe(before);
    // Still serving, state intact.
    expect(await call('GET', '/subjects/users-value/versions')).toMatchObject({ status: 200, body: [1] });
  });
});
