import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import {
  ChdbEngine,
  EmbeddedOfflineStore,
  ensureTables,
  offlineTables,
  serveSql,
  type SqlServer,
  type TableSpec,
} from '../../offline/index.js';
import { startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';

/**
 * Hostile SQL against the embedded store's endpoint, while the sink keeps writing dead letters
 * into `dlq` through the internal connection. Every statement must be refused or bounded with
 * ClickHouse's error; nothing may be written or read outside the tables; the sink's rows must keep
 * arriving. The protection is the engine's (grants, readonly=1, limits, priority) plus ClickHouse's
 * parser admitting one read-only statement: none of the cases below is special-cased anywhere.
 */
describe('the SQL endpoint under hostile SQL', () => {
  const logger = silentLogger();
  const prefix = `${uniqueName('sql')}.`;
  const kafka = testKafka('sluice-it-sql');
  let dir: string;
  let engine: ChdbEngine;
  let store: EmbeddedOfflineStore;
  let server: SqlServer;
  let registry: RunningSchemaRegistry | undefined;
  let sink: RunningSink;
  let producer: Producer | undefined;
  let producing: NodeJS.Timeout | undefined;
  let produced = 0;
  let dlq: TableSpec;
  let tablesBefore: string;

  const count = async (): Promise<number> =>
    Number((await engine.query('SELECT count() FROM dlq', { format: 'TSV' })).toString().trim() || '0');
  const ask = async (sql: string, query = ''): Promise<{ status: number; code: string | null; text: string }> => {
    const response = await fetch(`${server.url}/${query}`, { method: 'POST', body: sql });
    return { status: response.status, code: response.headers.get('x-clickhouse-exception-code'), text: await response.text() };
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-hostile-'));
    // What `sluice up` leaves in a data directory, including the admin password of old versions.
    await fs.writeFile(path.join(dir, 'stack.json'), JSON.stringify({ clickhouseAdmin: { username: 'sluice', password: 'old-secret' } }));
    engine = new ChdbEngine(path.join(dir, 'clickhouse'), {
      limits: {
        maxExecutionTimeS: 2,
        maxResultRows: 10_000,
        maxResultBytes: 16_000_000,
        maxMemoryBytes: 256_000_000,
        maxConcurrentQueries: 2,
      },
    });
    store = new EmbeddedOfflineStore(engine);
    const tables = offlineTables({ sources: [], views: [] });
    dlq = tables.find((table) => table.name === 'dlq')!;
    await ensureTables(store, tables);
    tablesBefore = (
      await engine.query("SELECT name FROM system.tables WHERE database = 'default' ORDER BY name", { format: 'TSV' })
    ).toString();
    server = await serveSql(engine, { host: '127.0.0.1', port: 0, readonly: true, logger });

    const admin = kafka.admin();
    await admin.connect();
    await createTopic(admin, `${prefix}dlq`, 2);
    await admin.disconnect();
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    sink = await runSink({
      brokers: inject('brokers'),
      groupId: `${prefix}sink`,
      topicPrefix: prefix,
      tables: [dlq],
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics: createMetricsRegistry(false),
      logger,
    });
    const connected = kafka.producer();
    await connected.connect();
    producer = connected;
    // Dead letters keep arriving for the whole file: the writer the users' queries must not starve.
    const produce = async (): Promise<void> => {
      await connected.send({
        topic: `${prefix}dlq`,
        messages: Array.from({ length: 5 }, (_, index) => ({
          key: `k${produced + index}`,
          value: Buffer.from([0xde, 0xad]),
          headers: { 'sluice.dlq.stage': 'ingest', 'sluice.dlq.error.code': 'SLUICE_TEST', 'sluice.dlq.topic': 'raw.x' },
        })),
      });
      produced += 5;
    };
    const tick = (): void => {
      producing = setTimeout(() => void produce().then(tick, tick), 100);
    };
    tick();
    await waitUntil(async () => (await count()) > 0, 60_000, 'the sink to write its first rows');
  });

  afterAll(async () => {
    if (producing) clearTimeout(producing);
    await producer?.disconnect();
    await sink.stop();
    await registry?.stop();
    await server.close();
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('answers reads', async () => {
    const answer = await ask("SELECT count() > 0, any(stage) FROM dlq WHERE stage = 'ingest'");
    expect(answer).toMatchObject({ status: 200, text: '1\tingest\n' });
  });

  // [statement, codes ClickHouse may answer with, URL parameters]
  const hostile = (): [string, number[], string?][] => [
    // several statements, and writes
    ['SELECT 1; DROP TABLE dlq', [62]],
    ['SELECT 1;DROP TABLE dlq;', [62]],
    ['DROP TABLE dlq', [164]],
    ['SELECT 1; CREATE TABLE evil (x Int8) ENGINE = Memory', [62]],
    ['CREATE TABLE evil (x Int8) ENGINE = Memory', [164]],
    ["WITH 1 AS x INSERT INTO dlq (stage) SELECT 'evil'", [164]],
    ["INSERT INTO dlq (stage) VALUES ('evil')", [164]],
    ['TRUNCATE TABLE dlq', [164]],
    ['ALTER TABLE dlq DELETE WHERE 1', [164]],
    ['RENAME TABLE dlq TO dlq_gone', [164]],
    ['OPTIMIZE TABLE dlq FINAL', [164]],
    ["CREATE USER evil IDENTIFIED WITH plaintext_password BY 'x'", [164]],
    ['GRANT ALL ON *.* TO default', [164]],
    ['CREATE FUNCTION evil AS (x) -> x', [164]],
    ['EXECUTE AS default SELECT 1', [164]],
    // files, in and out
    [`SELECT 1 INTO OUTFILE '${dir}/outfile.txt'`, [164]],
    [`SELECT 1 INTO OUTFILE '${dir}/outfile.txt' AND STDOUT`, [164]],
    [`INSERT INTO FUNCTION file('${dir}/written.csv', 'CSV') SELECT 1`, [164]],
    [`INSERT INTO dlq (stage) FROM INFILE '${dir}/stack.json' FORMAT LineAsString`, [164]],
    [`SELECT * FROM file('${dir}/stack.json', 'JSONAsString')`, [497]],
    [`SELECT file('${dir}/stack.json')`, [497]],
    [`SELECT arrayMap(file, ['${dir}/stack.json'])`, [497]],
    [`SELECT * FROM \`${dir}/stack.json\``, [497]],
    ["SELECT * FROM file('/etc/shadow', 'LineAsString')", [497]],
    ["SELECT * FROM file('/proc/self/environ', 'LineAsString')", [497]],
    [`DESCRIBE TABLE file('${dir}/stack.json')`, [497]],
    ["SELECT * FROM executable('id', 'TSV', 'x String')", [164, 497]],
    // the network
    ["SELECT * FROM url('http://127.0.0.1:1/metrics', 'LineAsString')", [497]],
    ["SELECT * FROM remote('127.0.0.1:9000', system.one)", [497]],
    ["SELECT * FROM s3('http://127.0.0.1:1/bucket/key.csv', 'CSV')", [497]],
    ["SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'user', 'password')", [497]],
    ["SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'user', 'password')", [497]],
    // the engine itself
    ['SYSTEM SHUTDOWN', [164]],
    ['SELECT 1; SYSTEM SHUTDOWN', [62]],
    ['SYSTEM DROP MARK CACHE', [164]],
    ['KILL QUERY WHERE 1', [164]],
    ['USE system', [164]],
    // settings: in the query, in SET, in the URL
    ['SET readonly = 0', [164]],
    ['SELECT 1 SETTINGS readonly = 0', [164]],
    ['SELECT count() FROM system.numbers SETTINGS max_execution_time = 0', [164]],
    ['SELECT * FROM numbers(1e10) SETTINGS max_result_rows = 0', [164]],
    ['DROP TABLE dlq', [164], '?readonly=0&allow_ddl=1'],
    ['SELECT count() FROM system.numbers', [159], '?max_execution_time=0&readonly=0'],
    // resources
    ['SELECT * FROM numbers(1e10)', [396]],
    ['SELECT count() FROM numbers(1e11) WHERE sipHash64(number) = 0', [159]],
    ['SELECT count() FROM system.numbers', [159]],
    ['SELECT sleep(3)', [159]],
    ["SELECT groupArray(repeat('x', 1000000)) FROM numbers(1000)", [241]],
  ];

  it('refuses or bounds every hostile statement with ClickHouse error, and nothing is written', async () => {
    for (const [sql, codes, query] of hostile()) {
      const answer = await ask(sql, query);
      expect(answer.status, sql).toBeGreaterThanOrEqual(400);
      expect(codes, `${sql} answered ${answer.text}`).toContain(Number(answer.code));
      expect(answer.text, sql).toMatch(/^Code: \d+\. DB::Exception: /);
    }
    for (const file of ['outfile.txt', 'written.csv'])
      await expect(fs.stat(path.join(dir, file)), `${file} must not exist`).rejects.toThrow(/ENOENT/);
    expect(
      (await engine.query("SELECT name FROM system.tables WHERE database = 'default' ORDER BY name", { format: 'TSV' })).toString(),
    ).toBe(tablesBefore);
    expect((await engine.query("SELECT count() FROM dlq WHERE stage = 'evil'", { format: 'TSV' })).toString()).toBe('0\n');
  });

  it("does not let the old admin password write, in any of ClickHouse's credential forms", async () => {
    const basic = `Basic ${Buffer.from('sluice:old-secret').toString('base64')}`;
    const forms: Record<string, string>[] = [{ Authorization: basic }, { 'X-ClickHouse-User': 'sluice', 'X-ClickHouse-Key': 'old-secret' }];
    for (const headers of forms) {
      const response = await fetch(`${server.url}/`, { method: 'POST', body: 'DROP TABLE dlq', headers });
      expect(response.headers.get('x-clickhouse-exception-code')).toBe('164');
    }
    expect((await ask('DROP TABLE dlq', '?user=sluice&password=old-secret')).code).toBe('164');
  });

  it("keeps the sink's rows arriving while ten slow queries run, each bounded by ClickHouse", async () => {
    const before = await count();
    const slow = Array.from({ length: 10 }, () => ask('SELECT count() FROM system.numbers'));
    // The rows the sink writes while the slow queries hold the users' connections.
    await waitUntil(async () => (await count()) >= before + 50, 60_000, "the sink's rows while slow queries run");
    const duringSlow = await count();
    const answers = await Promise.all(slow);
    for (const answer of answers) {
      expect(answer.status).toBeGreaterThanOrEqual(400);
      // 159: stopped at max_execution_time; 202: no users' connection freed up in time.
      expect([159, 202]).toContain(Number(answer.code));
    }
    expect(duringSlow).toBeGreaterThanOrEqual(before + 50);
    expect(sink.status().inserted).toBeGreaterThan(0);
  });

  it('creates a dropped platform table again on the next insert, and the sink keeps going', async () => {
    // Dropped by sluice's own (internal) connection: users cannot drop anything.
    await engine.query('DROP TABLE dlq', { format: 'TSV' });
    await waitUntil(
      async () => {
        try {
          return (await count()) > 0;
        } catch {
          return false;
        }
      },
      60_000,
      'dlq to exist again with rows',
    );
    const after = await count();
    await waitUntil(async () => (await count()) > after, 60_000, 'more rows after the table came back');
    let crashed = false;
    sink.done.catch(() => {
      crashed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(crashed).toBe(false);
  });
});
