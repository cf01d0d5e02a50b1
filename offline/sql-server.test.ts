import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../common/errors.js';
import { silentLogger } from '../common/logger.js';
import { ChdbEngine } from './chdb-engine.js';
import { serveSql, type SqlServer } from './sql-server.js';
import { RemoteOfflineStore } from './store.js';

const TOKEN = 'unit-test-token-0123456789';

// chDB allows one data directory per process: this file owns it (vitest runs files in separate processes).
describe('the ClickHouse HTTP interface over embedded chDB', () => {
  let dir: string;
  let engine: ChdbEngine;
  let open: SqlServer;
  let guarded: SqlServer;
  let reader: ClickHouseClient;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-chdb-'));
    engine = new ChdbEngine(path.join(dir, 'data'), {
      limits: {
        maxExecutionTimeS: 2,
        maxResultRows: 1000,
        maxResultBytes: 1_000_000,
        maxMemoryBytes: 100_000_000,
        maxConcurrentQueries: 1,
      },
    });
    await engine.query('CREATE DATABASE IF NOT EXISTS sluice', { format: 'TSV' });
    await engine.query('CREATE TABLE sluice.events (id String, amount Float64, at DateTime64(3)) ENGINE = MergeTree ORDER BY id', {
      format: 'TSV',
    });
    open = await serveSql(engine, { host: '127.0.0.1', port: 0, readonly: true, logger: silentLogger() });
    guarded = await serveSql(engine, {
      host: '127.0.0.1',
      port: 0,
      readonly: true,
      tokens: [TOKEN],
      writerSocket: false,
      logger: silentLogger(),
    });
    reader = createClient({ url: open.url, database: 'sluice' });
  });

  afterAll(async () => {
    await reader.close();
    await open.close();
    await guarded.close();
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("lets sluice's jobs write through the writer socket, and @clickhouse/client read through the endpoint", async () => {
    expect(open.writerSocket).toBe(path.join(dir, 'data', 'sluice-run', 'sql-writer.sock'));
    expect((await fs.stat(path.join(dir, 'data', 'sluice-run'))).mode & 0o777).toBe(0o700);
    const writer = new RemoteOfflineStore('http://sluice-writer/sluice', { socketPath: open.writerSocket });
    try {
      await writer.insert('events', [
        { id: 'a', amount: 1.5, at: '2026-11-28 10:00:00.000' },
        { id: 'b', amount: 2.25, at: '2026-11-28 11:00:00.000' },
      ]);
    } finally {
      await writer.close();
    }
    const result = await reader.query({ query: 'SELECT id, amount FROM events ORDER BY id', format: 'JSONEachRow' });
    expect(await result.json()).toEqual([
      { id: 'a', amount: 1.5 },
      { id: 'b', amount: 2.25 },
    ]);
    const total = await reader.query({
      query: 'SELECT sum(amount) AS total FROM events WHERE amount > {min:Float64}',
      format: 'JSONEachRow',
      query_params: { min: 0 },
    });
    expect(await total.json()).toEqual([{ total: 3.75 }]);
  });

  it('answers curl-style requests: query in the URL or body, FORMAT clauses, default_format, database, query_id, /ping', async () => {
    expect(await (await fetch(`${open.url}/ping`)).text()).toBe('Ok.\n');
    const viaUrl = await fetch(`${open.url}/?query=${encodeURIComponent('SELECT 1 + 1 AS two FORMAT JSONEachRow')}`);
    expect(await viaUrl.text()).toBe('{"two":2}\n');
    expect(viaUrl.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
    const viaBody = await fetch(`${open.url}/?default_format=CSV&database=sluice&query_id=q-42`, {
      method: 'POST',
      body: 'SELECT count() FROM events',
    });
    expect(await viaBody.text()).toBe('2\n');
    expect(viaBody.headers.get('x-clickhouse-query-id')).toBe('q-42');
    expect(await (await fetch(`${open.url}/?query=${encodeURIComponent('SELECT 7')}`)).text()).toBe('7\n');
  });

  it("returns ClickHouse's error text and code for a bad query, and keeps serving", async () => {
    const response = await fetch(`${open.url}/`, { method: 'POST', body: 'SELECT 1 +' });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-clickhouse-exception-code')).toBe('62');
    expect(await response.text()).toMatch(/^Code: 62\. DB::Exception: Syntax error/);
    await expect(reader.query({ query: 'SELECT * FROM no_such_table', format: 'JSONEachRow' })).rejects.toMatchObject({ code: '60' });
    expect(await (await fetch(`${open.url}/?query=SELECT%203`)).text()).toBe('3\n');
  });

  it('is read-only for users: writes, DDL and control statements are refused, the data stays', async () => {
    for (const sql of ['DROP DATABASE sluice', 'INSERT INTO sluice.events (id) VALUES (1)', 'SELECT 1; DROP TABLE sluice.events']) {
      const denied = await fetch(`${open.url}/`, { method: 'POST', body: sql });
      expect(denied.status).toBeGreaterThanOrEqual(400);
      expect(await denied.text()).toMatch(/^Code: (164|62)\./);
    }
    expect((await engine.query('SELECT count() FROM sluice.events', { format: 'TSV' })).toString()).toBe('2\n');
  });

  it("bounds a user's query with ClickHouse's limits, which the query cannot change", async () => {
    const slow = await fetch(`${open.url}/`, { method: 'POST', body: 'SELECT sleep(3)' });
    expect(await slow.text()).toMatch(/Code: 159\. DB::Exception: Timeout exceeded/);
    const many = await fetch(`${open.url}/`, { method: 'POST', body: 'SELECT * FROM numbers(1e10)' });
    expect(await many.text()).toMatch(/Code: 396\. DB::Exception: Limit for result exceeded/);
    const override = await fetch(`${open.url}/`, { method: 'POST', body: 'SELECT sleep(1) SETTINGS max_execution_time = 0' });
    expect(await override.text()).toMatch(/Cannot modify 'max_execution_time' setting in readonly mode/);
  });

  it('cancels a query in the engine when its client goes away (QUERY_WAS_CANCELLED, not the time limit)', async () => {
    const gone = new AbortController();
    const running = engine.userQuery('SELECT count() FROM system.numbers', { format: 'TSV', signal: gone.signal });
    setTimeout(() => gone.abort(), 200);
    await expect(running).rejects.toMatchObject({ clickhouseCode: 394 });
  });

  it('authenticates users with the token as a Basic password, a Bearer token or X-ClickHouse-Key', async () => {
    const ask = (headers: Record<string, string>, query = '') =>
      fetch(`${guarded.url}/${query}`, { method: 'POST', body: 'SELECT 42', headers });
    const missing = await ask({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/Basic/);
    expect(await missing.text()).toMatch(/^Code: 516\. .*Authentication required/);
    const wrong = await ask({ Authorization: `Bearer ${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toMatch(/Authentication failed/);
    const accepted: Record<string, string>[] = [
      { Authorization: `Bearer ${TOKEN}` },
      { Authorization: `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}` },
      { 'X-ClickHouse-User': 'default', 'X-ClickHouse-Key': TOKEN },
    ];
    for (const headers of accepted) {
      const response = await ask(headers);
      expect(await response.text()).toBe('42\n');
    }
    expect(await (await ask({}, `?password=${TOKEN}`)).text()).toBe('42\n');
    const client = createClient({ url: guarded.url, password: TOKEN });
    try {
      expect(await (await client.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' })).json()).toEqual([{ one: 1 }]);
    } finally {
      await client.close();
    }
    expect(await (await fetch(`${guarded.url}/ping`)).text()).toBe('Ok.\n');
  });

  it('refuses to listen on a non-loopback address without tokens, and to accept users writes', async () => {
    await expect(
      serveSql(engine, { host: '0.0.0.0', port: 0, readonly: true, writerSocket: false, logger: silentLogger() }),
    ).rejects.toThrow(/refusing to serve the SQL endpoint on 0\.0\.0\.0 \(SLUICE_SQL_HOST\) without authentication.*SLUICE_SQL_AUTH_TOKEN/);
    const withTokens = await serveSql(engine, {
      host: '0.0.0.0',
      port: 0,
      readonly: true,
      tokens: [TOKEN],
      writerSocket: false,
      logger: silentLogger(),
    });
    await withTokens.close();
    await expect(serveSql(engine, { host: '127.0.0.1', port: 0, readonly: false, logger: silentLogger() })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });
});
