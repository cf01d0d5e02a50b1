import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../kafka/index.js';
import { AvroSerde } from '../../schemas/index.js';
import type { StackState } from '../../app/stack.js';
import { readToEnd, waitUntil } from '../helpers.js';
import {
  cleanEnv,
  DEMO_TOPOLOGY,
  exitedOrDiagnosed,
  processExists,
  spawnSluice,
  waitForOutput,
  type SluiceProcess,
} from './sluice-process.js';

/**
 * The demo's broker SIGKILLed while events flow: sluice exits within 30 s with the reason, starts
 * again on the same data directory and goes on; in the end every event the generator sent is in
 * events.transactions and predictions.fraud (topics and ClickHouse) exactly once.
 */
interface DemoPosition {
  readonly historySent: boolean;
  readonly historyCounts: Readonly<Record<string, number>>;
  readonly liveSent: number;
}

/** The demo's raw topics and the id field of their JSON values. */
const RAW_IDS: Readonly<Record<string, string>> = {
  'raw.transactions': 'transaction_id',
  'raw.clicks': 'click_id',
  'raw.chargebacks': 'chargeback_id',
};

describe('sluice up --demo, its broker SIGKILLed', () => {
  const running: SluiceProcess[] = [];
  const brokers: number[] = [];
  let dataDir: string | undefined;

  afterAll(async () => {
    for (const proc of running) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    // The broker dies with its parent (ParentWatch); should one outlive a failed test, it goes too.
    await waitUntil(() => brokers.every((pid) => !processExists(pid)), 30_000, 'the brokers to exit').catch(() => undefined);
    for (const pid of brokers) if (processExists(pid)) process.kill(pid, 'SIGKILL');
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  const start = async (rate: string): Promise<{ proc: SluiceProcess; stack: StackState }> => {
    const proc = spawnSluice(
      ['up', '--demo', '--topology', DEMO_TOPOLOGY, '--history', '3000', '--rate', rate],
      // Without vitest's NODE_ENV=test, which shortens kafkajs' retries to about a second in all.
      cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPOLOGY: undefined, NODE_ENV: undefined }),
    );
    running.push(proc);
    await waitForOutput(proc, /sluice is up/, 180_000);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir!, 'stack.json'), 'utf8')) as StackState;
    if (stack.kafkaPid !== undefined) brokers.push(stack.kafkaPid);
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
  const readPosition = async (): Promise<DemoPosition> =>
    JSON.parse(await fs.readFile(path.join(dataDir!, 'demo.json'), 'utf8')) as DemoPosition;

  it('exits within 30 s with the reason, starts again, and ingests and predicts every event exactly once', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-broker-kill-'));

    // ---- first run: history and live events flowing through every stage; the broker is killed ----
    const first = await start('5');
    const kafkaPid = first.stack.kafkaPid;
    expect(kafkaPid).toBeGreaterThan(0);
    await waitUntil(
      async () => Number(await query(first.stack, 'SELECT count() FROM predictions_fraud')) > 0,
      300_000,
      'predictions in ClickHouse',
    );
    const killedAt = Date.now();
    process.kill(kafkaPid!, 'SIGKILL');
    const { code } = await exitedOrDiagnosed(first.proc, 40_000);
    const stderr = first.proc.stderr();
    expect((Date.now() - killedAt) / 1000, stderr.slice(-3_000)).toBeLessThan(30);
    expect(code).toBe(1);
    expect(stderr).toMatch(/the local Kafka broker exited unexpectedly/);
    // Through its bounded stop, not a crash on an uncaught exception (after which Node prints its version).
    expect(stderr).not.toMatch(/^Node\.js v\d/m);
    expect(processExists(kafkaPid!)).toBe(false);
    const crashed = await readPosition();
    expect(crashed.historySent).toBe(true);

    // ---- second run: the generator goes on with live events (re-sending what it had not recorded) ----
    const second = await start('5');
    await waitUntil(async () => (await readPosition()).liveSent >= crashed.liveSent + 25, 120_000, 'live events sent again');
    await stop(second.proc);
    const position = await readPosition();
    const sent = Object.values(position.historyCounts).reduce((sum, count) => sum + count, 0) + position.liveSent;
    expect(sent).toBeGreaterThan(3000);

    // ---- third run, no live events: the pipeline finishes what is in the topics; then the check ----
    const third = await start('0');
    const { stack } = third;
    expect(await readPosition()).toEqual(position);
    const kafka = createKafka({ brokers: stack.endpoints.kafka.split(','), clientId: 'broker-kill-test' });

    // What the generator sent: its records, re-sent ones included (same ids), read to the end.
    const rawIds = new Set<string>();
    const transactions = new Set<string>();
    let rawRecords = 0;
    for (const [topic, idField] of Object.entries(RAW_IDS)) {
      for (const message of await readToEnd(kafka, topic)) {
        const id = String((JSON.parse(message.value!.toString()) as Record<string, unknown>)[idField]);
        rawRecords++;
        rawIds.add(`${topic}:${id}`);
        if (topic === 'raw.transactions') transactions.add(`transactions:${id}`);
      }
    }
    // Every event the generator counted as sent is there, and nothing else (repeats have the same id).
    expect(rawIds.size).toBe(sent);
    expect(rawRecords).toBeGreaterThanOrEqual(rawIds.size);
    expect(transactions.size).toBeGreaterThan(position.historyCounts.transactions ?? 0);

    // ClickHouse: every transaction ingested and predicted, once.
    await waitUntil(
      async () =>
        Number(await query(stack, 'SELECT count() FROM events_transactions')) >= transactions.size &&
        Number(await query(stack, 'SELECT count() FROM predictions_fraud')) >= transactions.size,
      180_000,
      'every transaction ingested and predicted',
    );
    for (const table of ['events_transactions', 'predictions_fraud']) {
      expect(await query(stack, `SELECT count(), uniqExact(event_id) FROM ${table}`), table).toBe(
        `${transactions.size}\t${transactions.size}`,
      );
      expect(new Set((await query(stack, `SELECT event_id FROM ${table}`)).split('\n')), table).toEqual(transactions);
    }

    // The topics themselves (the tables would hide duplicates: the sink skips rows it has).
    const serde = new AvroSerde(stack.endpoints.schemaRegistry);
    const committedIds = async (topic: string): Promise<string[]> => {
      const ids: string[] = [];
      for (const message of await readToEnd(kafka, topic))
        if (message.value) ids.push(String(((await serde.decode(message.value)) as { event_id: unknown }).event_id));
      return ids;
    };
    for (const topic of ['events.transactions', 'predictions.fraud']) {
      const ids = await committedIds(topic);
      expect(ids.length, topic).toBe(transactions.size);
      expect(new Set(ids), topic).toEqual(transactions);
    }

    await stop(third.proc);
  }, 900_000);
});
