import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../common/logger.js';
import { ChdbEngine } from './chdb-engine.js';
import { serveSql, type SqlServer } from './sql-server.js';

// chDB allows one data directory per process: this file owns it (vitest runs files in separate processes).
describe('the ClickHouse HTTP interface over embedded chDB', () => {
  let dir: string;
  let engine: ChdbEngine;
  let writable: SqlServer;
  let readonly: SqlServer;
  let client: ClickHouseClient;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-chdb-'));
    engine = new ChdbEngine(path.join(dir, 'data'));
    writable = await serveSql(engine, { host: '127.0.0.1', port: 0, readonly: false, logger: silentLogger() });
    readonly = await serveSql(engine, { host: '127.0.0.1', port: 0, readonly: true, logger: silentLogger() });
    client = createClient({ url: writable.url });
  });

  afterAll(async () => {
    await client.close();
    await writable.close();
    await readonly.close();
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs commands, inserts and queries from @clickhouse/client', async () => {
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS sluice' });
    await client.command({
      query: 'CREATE TABLE IF NOT EXISTS sluice.events (id String, amount Float64, at DateTime64(3)) ENGINE = MergeTree ORDER BY id',
    });
    await client.insert({
      table: 'sluice.events',
      values: [
        { id: 'a', amount: 1.5, at: '2026-11-28 10:00:00.000' },
        { id: 'b', amount: 2.25, at: '2026-11-28 11:00:00.000' },
      ],
      format: 'JSONEachRow',
    });
    const result = await client.query({ query: 'SELECT id, amount FROM sluice.events ORDER BY id', format: 'JSONEachRow' });
    expect(await result.json()).toEqual([
      { id: 'a', amount: 1.5 },
      { id: 'b', amount: 2.25 },
    ]);
    const total = await client.query({
      query: 'SELECT sum(amount) AS total FROM sluice.events WHERE amount > {min:Float64}',
      format: 'JSONEachRow',
      query_params: { min: 0 },
    });
    expect(await total.json()).toEqual([{ total: 3.75 }]);
  });

  it('answers curl-style requests: query in the URL or body, FORMAT clauses, default_format, database, query_id, /ping', async () => {
    expect(await (await fetch(`${writable.url}/ping`)).text()).toBe('Ok.\n');
    const viaUrl = await fetch(`${writable.url}/?query=${encodeURIComponent('SELECT 1 + 1 AS two FORMAT JSONEachRow')}`);
    expect(await viaUrl.text()).toBe('{"two":2}\n');
    expect(viaUrl.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
    const viaBody = await fetch(`${writable.url}/?default_format=CSV&database=sluice&query_id=q-42`, {
      method: 'POST',
      body: 'SELECT count() FROM events',
    });
    expect(await viaBody.text()).toBe('2\n');
    expect(viaBody.headers.get('x-clickhouse-query-id')).toBe('q-42');
    expect(await (await fetch(`${writable.url}/?query=${encodeURIComponent('SELECT 7')}`)).text()).toBe('7\n');
  });

  it("returns ClickHouse's error text and code for a bad query, and keeps serving", async () => {
    const response = await fetch(`${writable.url}/`, { method: 'POST', body: 'SELECT 1 +' });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.headers.get('x-clickhouse-exception-code')).toBe('62');
    expect(await response.text()).toMatch(/^Code: 62\. DB::Exception: Syntax error/);
    await expect(client.query({ query: 'SELECT * FROM no_such_table', format: 'JSONEachRow' })).rejects.toMatchObject({ code: '60' });
    expect(await (await fetch(`${writable.url}/?query=SELECT%203`)).text()).toBe('3\n');
  });

  it('is read-only for users unless configured otherwise', async () => {
    const denied = await fetch(`${readonly.url}/`, { method: 'POST', body: 'DROP DATABASE sluice' });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toMatch(/Code: 164.*READONLY/);
    const reader = createClient({ url: readonly.url, database: 'sluice' });
    try {
      const rows = await reader.query({ query: 'SELECT id FROM events ORDER BY id', format: 'JSONEachRow' });
      expect(await rows.json()).toEqual([{ id: 'a' }, { id: 'b' }]);
    } finally {
      await reader.close();
    }
  });
});
