import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError } from '../../common/errors.js';
import { silentLogger } from '../../common/logger.js';
import { registerSchemas, SchemaStartupError, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { cleanEnv, spawnSluice, waitForOutput } from '../cli/sluice-process.js';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';

const TOKEN = 'registry-test-token-0123456789';
const JSON_TYPE = 'application/vnd.schemaregistry.v1+json';
const order = (fields: object[]) => JSON.stringify({ type: 'record', name: 'Order', namespace: 'test', fields });
const v1 = order([{ name: 'id', type: 'string' }]);

describe('the schema registry, hardened', () => {
  const prefix = `${uniqueName('regh')}.`;
  const subject = `${prefix}orders-value`;
  const kafka = testKafka('sluice-it-registry-hardening');
  let registry: RunningSchemaRegistry;
  let consumer: Consumer | undefined;

  const call = async (method: string, urlPath: string, body?: unknown, token?: string) => {
    const response = await fetch(`${registry.url}${urlPath}`, {
      method,
      headers: {
        'Content-Type': JSON_TYPE,
        ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: response.status,
      body: (await response.json()) as { error_code?: number; message?: string } & Record<string, unknown>,
    };
  };

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await createTopic(admin, `${prefix}orders`, 1);
    await admin.disconnect();
    registry = await startSchemaRegistry({
      brokers: inject('brokers'),
      topic: `${prefix}_schemas`,
      host: '127.0.0.1',
      port: 0,
      tokens: [TOKEN],
      logger: silentLogger(),
    });
  });

  afterAll(async () => {
    await consumer?.disconnect();
    await registry.stop();
  });

  it('needs the token for registrations, deletes and config, and not for reads', async () => {
    const unauthorized = await call('POST', `/subjects/${subject}/versions`, { schema: v1 });
    expect(unauthorized).toMatchObject({ status: 401, body: { error_code: 401 } });
    expect((await call('POST', `/subjects/${subject}/versions`, { schema: v1 }, 'wrong-token-0123456789')).status).toBe(401);
    expect(await call('POST', `/subjects/${subject}/versions`, { schema: v1 }, TOKEN)).toMatchObject({ status: 200, body: { id: 1 } });
    expect((await call('PUT', `/config/${subject}`, { compatibility: 'NONE' })).status).toBe(401);
    expect((await call('DELETE', `/subjects/${subject}`)).status).toBe(401);
    expect((await call('DELETE', '/config')).status).toBe(401);
    // Reads, lookups and compatibility checks stay open.
    expect((await call('GET', '/subjects')).body).toContain(subject);
    expect((await call('POST', `/subjects/${subject}`, { schema: v1 })).status).toBe(200);
    expect((await call('POST', `/compatibility/subjects/${subject}/versions/latest`, { schema: v1 })).body).toEqual({
      is_compatible: true,
    });
  });

  it('refuses to delete a subject a running consumer group reads, unless forced', async () => {
    consumer = kafka.consumer({ groupId: `${prefix}orders-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}orders`, fromBeginning: true });
    await consumer.run({ eachMessage: () => Promise.resolve() });
    // In use once the group has a member (Kafka is asked on each delete).
    await waitUntil(
      async () => (await call('DELETE', `/subjects/${subject}/versions/1`, undefined, TOKEN)).status === 409,
      60_000,
      'the group to count as using the subject',
    );
    const refused = await call('DELETE', `/subjects/${subject}`, undefined, TOKEN);
    expect(refused.status).toBe(409);
    expect(refused.body.error_code).toBe(40901);
    expect(refused.body.message).toMatch(
      new RegExp(
        `is in use: topic ${prefix.replace('.', '\\.')}orders is read by .*${prefix.replace('.', '\\.')}orders-reader \\(1 member\\).*\\?force=true`,
      ),
    );
    expect((await call('GET', `/subjects/${subject}/versions`)).body).toEqual([1]);
    expect(await call('DELETE', `/subjects/${subject}?force=true`, undefined, TOKEN)).toMatchObject({ status: 200, body: [1] });
    expect((await call('DELETE', `/subjects/${subject}?permanent=true`, undefined, TOKEN)).status).toBe(409);
    await consumer.disconnect();
    consumer = undefined;
    // Not in use once the group is empty: no force needed.
    await waitUntil(
      async () => (await call('DELETE', `/subjects/${subject}?permanent=true`, undefined, TOKEN)).status === 200,
      60_000,
      'the subject to be deletable without force',
    );
    expect((await call('GET', '/subjects?deleted=true')).body).not.toContain(subject);
  });

  it('names the subject, the registered version, the rule and the commands when start-up registration is incompatible', async () => {
    const incompatible = `${prefix}payments-value`;
    await call(
      'POST',
      `/subjects/${incompatible}/versions`,
      {
        schema: order([
          { name: 'id', type: 'string' },
          { name: 'total', type: 'int' },
        ]),
      },
      TOKEN,
    );
    const ours = {
      type: 'record',
      name: 'Order',
      namespace: 'test',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'total', type: 'string' },
      ],
    };
    const failure = registerSchemas(
      registry.url,
      [{ subject: incompatible, topic: `${prefix}payments`, file: 'payments.avsc', schema: ours }],
      silentLogger(),
    );
    await expect(failure).rejects.toBeInstanceOf(SchemaStartupError);
    const message = await failure.then(
      () => '',
      (error: unknown) => (error as Error).message,
    );
    expect(message).toMatch(
      new RegExp(`payments\\.avsc is incompatible with subject ${incompatible.replace('.', '\\.')}: TYPE_MISMATCH at /fields/total`),
    );
    expect(message).toMatch(new RegExp(`The conflicting registration: ${incompatible.replace('.', '\\.')} version 1\\.`));
    expect(message).toMatch(/sluice run registry/);
    expect(message).toContain(`curl -X DELETE '${registry.url}/subjects/${incompatible}/versions/1?force=true'`);
  });

  it('refuses to listen on a non-loopback address without tokens', async () => {
    await expect(
      startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_other`, host: '0.0.0.0', port: 0, logger: silentLogger() }),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('sluice run registry', () => {
  it('runs the registry alone against the cluster, where an operator can inspect subjects, until Ctrl-C', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-run-registry-'));
    const prefix = `${uniqueName('runreg')}.`;
    const proc = spawnSluice(
      ['run', 'registry'],
      cleanEnv({
        SLUICE_DATA_DIR: dataDir,
        KAFKA_BROKERS: inject('brokers').join(','),
        SLUICE_TOPIC_PREFIX: prefix,
        SLUICE_LOG_LEVEL: 'warn',
      }),
    );
    try {
      await waitForOutput(proc, /schema registry running at (http:\/\/127\.0\.0\.1:\d+)/, 120_000);
      const url = /schema registry running at (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.stdout())?.[1] ?? '';
      const registered = await fetch(`${url}/subjects/${prefix}x-value/versions`, {
        method: 'POST',
        headers: { 'Content-Type': JSON_TYPE },
        body: JSON.stringify({ schema: v1 }),
      });
      expect(registered.status).toBe(200);
      expect(await (await fetch(`${url}/subjects`)).json()).toEqual([`${prefix}x-value`]);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toMatchObject({ code: 0 });
      expect(proc.stdout()).toMatch(/schema registry stopped/);
    } finally {
      proc.child.kill('SIGKILL');
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
