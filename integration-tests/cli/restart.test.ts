import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, readRanges, resolveRanges } from '../../kafka/index.js';
import { AvroSerde } from '../../schemas/index.js';
import type { StackState } from '../../app/stack.js';
import { waitUntil } from '../helpers.js';
import { cleanEnv, DEMO_TOPOLOGY, spawnSluice, waitForOutput, type SluiceProcess } from './sluice-process.js';

/**
 * The demo stopped and started again on the same data directory (as `npm start` twice): the second
 * run continues — no history sent again, no event or prediction twice, no model trained again — and
 * neither start logs an ERROR line.
 */
interface DemoPosition {
  readonly historySent: boolean;
  readonly historyCounts: Readonly<Record<string, number>>;
  readonly liveSent: number;
}

const RAW_TOPICS = ['raw.transactions', 'raw.clicks', 'raw.chargebacks'];

describe('sluice up --demo, stopped and started again', () => {
  const running: SluiceProcess[] = [];
  let dataDir: string | undefined;

  afterAll(async () => {
    for (const proc of running) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  const start = async (rate: string): Promise<{ proc: SluiceProcess; stack: StackState }> => {
    const proc = spawnSluice(
      ['up', '--demo', '--topology', DEMO_TOPOLOGY, '--history', '3000', '--rate', rate],
      cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPOLOGY: undefined }),
    );
    running.push(proc);
    await waitForOutput(proc, /sluice is up/, 180_000);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir!, 'stack.json'), 'utf8')) as StackState;
    return { proc, stack };
  };
  const stop = async (proc: SluiceProcess): Promise<void> => {
    proc.child.kill('SIGINT');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 120_000);
    const { code } = await proc.exited;
    clearTimeout(timer);
    expect(code).toBe(0);
  };
  const query = async (stack: StackState, sql: string): Promise<string> => {
    const response = await fetch(`${stack.endpoints.clickhouse}/?query=${encodeURIComponent(sql)}`);
    return response.ok ? (await response.text()).trim() : '';
  };
  const errorLines = (proc: SluiceProcess): string[] =>
    proc
      .stderr()
      .split('\n')
      .filter((line) => line.includes('"level":50'));

  it('continues where it stopped: nothing sent, ingested or predicted twice', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-restart-'));

    // ---- first run: history, the first model, live events scored by it ---------------------------
    const first = await start('5');
    await waitForOutput(first.proc, /model fraud v1 trained from replayed topics/, 300_000);
    await waitUntil(
      async () => Number(await query(first.stack, "SELECT count() FROM predictions_fraud WHERE deployment = 'CHAMPION'")) > 0,
      120_000,
      'live events scored by the champion',
    );
    await stop(first.proc);
    const position = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8')) as DemoPosition;
    expect(position.historySent).toBe(true);
    expect(position.liveSent).toBeGreaterThan(0);
    const historySent = Object.values(position.historyCounts).reduce((sum, count) => sum + count, 0);
    expect(historySent).toBeGreaterThanOrEqual(3000);

    // ---- second run, no live events: it only finishes what the first left --------------------------
    const second = await start('0');
    const { stack } = second;
    const kafka = createKafka({ brokers: stack.endpoints.kafka.split(','), clientId: 'restart-test' });
    const admin = kafka.admin();
    await admin.connect();
    let rawRecords = 0;
    for (const topic of RAW_TOPICS)
      for (const partition of await admin.fetchTopicOffsets(topic)) rawRecords += Number(partition.high) - Number(partition.low);
    await admin.disconnect();
    // Every record the producer sent, once: the history was not sent again.
    expect(rawRecords).toBe(historySent + position.liveSent);
    expect(JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'))).toEqual(position);

    // Every event scored, once.
    await waitUntil(
      async () => {
        const events = await query(stack, 'SELECT count() FROM events_transactions');
        return events !== '' && events === (await query(stack, 'SELECT count() FROM predictions_fraud'));
      },
      120_000,
      'every transaction predicted',
    );
    expect(await query(stack, 'SELECT uniqExact(event_id) = count() FROM events_transactions')).toBe('1');
    expect(await query(stack, 'SELECT uniqExact(event_id) = count() FROM predictions_fraud')).toBe('1');
    // The topics themselves (the tables would hide duplicates: the sink skips rows it has).
    const committedIds = async (topic: string): Promise<string[]> => {
      const serde = new AvroSerde(stack.endpoints.schemaRegistry);
      const ids: string[] = [];
      await readRanges(kafka, topic, await resolveRanges(kafka, topic), async (_partition, message) => {
        if (message.value) ids.push(String(((await serde.decode(message.value)) as { event_id: unknown }).event_id));
      });
      return ids;
    };
    const events = await committedIds('events.transactions');
    const predictions = await committedIds('predictions.fraud');
    expect(new Set(events).size).toBe(events.length);
    expect(new Set(predictions).size).toBe(predictions.length);
    expect(new Set(predictions)).toEqual(new Set(events));
    expect(Number(await query(stack, 'SELECT count() FROM registry_models'))).toBe(1);
    // The errors kafkajs retries itself are counted where Prometheus looks.
    expect(await (await fetch(stack.endpoints.metrics)).text()).toContain('# TYPE sluice_kafka_client_retried_errors_total counter');

    await stop(second.proc);
    expect(second.proc.stdout()).not.toContain('trained from replayed topics');
    // Normal start-ups log no ERROR: kafkajs' retried errors are at debug level (and counted).
    expect(errorLines(first.proc)).toEqual([]);
    expect(errorLines(second.proc)).toEqual([]);
  });
});
