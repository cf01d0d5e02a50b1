import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createKafka } from '../../kafka/index.js';
import { isPortFree } from '../../common/ports.js';
import { waitUntil } from '../helpers.js';
import { cleanEnv, exitedOrDiagnosed, processExists, runSluice, spawnSluice, waitForOutput, type SluiceProcess } from './sluice-process.js';
import { retryKafka } from '../../kafka/index.js';

interface StackFile {
  pid: number;
  kafkaPid: number;
  endpoints: { kafka: string };
}
interface PortsFile {
  port: number;
  controllerPort: number;
}

const dirs: string[] = [];
const processes: SluiceProcess[] = [];

async function tempDataDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-up-'));
  dirs.push(dir);
  return dir;
}

async function startUp(dataDir: string): Promise<{ proc: SluiceProcess; stack: StackFile; ports: PortsFile }> {
  const proc = spawnSluice(['up'], cleanEnv({ SLUICE_DATA_DIR: dataDir }));
  processes.push(proc);
  await waitForOutput(proc, /sluice is up/, 120_000);
  const stack = JSON.parse(await fs.readFile(path.join(dataDir, 'stack.json'), 'utf8')) as StackFile;
  const ports = JSON.parse(await fs.readFile(path.join(dataDir, 'kafka', 'ports.json'), 'utf8')) as PortsFile;
  return { proc, stack, ports };
}

async function expectBrokerGone(stack: StackFile, ports: PortsFile): Promise<void> {
  await waitUntil(() => !processExists(stack.kafkaPid), 40_000, `broker JVM ${stack.kafkaPid} to exit`);
  expect(processExists(stack.kafkaPid)).toBe(false);
  expect(await isPortFree(ports.port)).toBe(true);
  expect(await isPortFree(ports.controllerPort)).toBe(true);
}

afterEach(async () => {
  for (const proc of processes.splice(0)) proc.child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

describe('sluice up', () => {
  it('starts the broker, reports it in `status --json`, and stops everything on SIGINT', async () => {
    const dataDir = await tempDataDir();
    const { proc, stack, ports } = await startUp(dataDir);
    expect(processExists(stack.kafkaPid)).toBe(true);

    const status = await runSluice(['status', '--json'], cleanEnv({ SLUICE_DATA_DIR: dataDir }));
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as { up: boolean; kafka: string; schemaRegistry: string };
    expect(report).toMatchObject({
      up: true,
      kafka: `127.0.0.1:${ports.port}`,
      schemaRegistry: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) as unknown,
    });
    // The registry answers, with the project's contracts registered at start-up.
    const subjects = (await (await fetch(`${report.schemaRegistry}/subjects`)).json()) as string[];
    expect(subjects).toEqual(
      expect.arrayContaining(['raw.transactions-value', 'events.transactions-value', 'monitoring.quality-value', 'registry.models-value']),
    );
    // The stages run, export Prometheus metrics, and report ready once they own their partitions.
    const metricsUrl = (report as unknown as { metrics: string }).metrics;
    await waitUntil(
      async () => (await fetch(metricsUrl.replace(/metrics$/, 'ready'))).status === 200,
      30_000,
      'the ingest stage to be ready',
    );
    const metricsText = await (await fetch(metricsUrl)).text();
    // The fused pipeline owns every task: 3 sources × 6 partitions.
    expect(metricsText).toMatch(/sluice_assigned_partitions\{stage="pipeline"\} 18/);
    // The embedded ClickHouse answers SQL over its HTTP interface, read-only for users.
    const clickhouse = (report as unknown as { clickhouse: string }).clickhouse;
    expect(await (await fetch(`${clickhouse}/?query=${encodeURIComponent('SELECT 40 + 2')}`)).text()).toBe('42\n');
    expect((await fetch(`${clickhouse}/`, { method: 'POST', body: 'CREATE DATABASE nope' })).status).toBe(403);
    const table = await runSluice(['sql', 'SELECT 6 * 7 AS answer'], cleanEnv({ SLUICE_DATA_DIR: dataDir }));
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/answer[\s\S]*42/);
    const wrong = await runSluice(['sql', 'SELECT 1 +'], cleanEnv({ SLUICE_DATA_DIR: dataDir }));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^sluice: Code: 62\. DB::Exception/);

    proc.child.kill('SIGINT');
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(proc.stdout()).toMatch(/stopped/);
    await expectBrokerGone(stack, ports);

    const after = await runSluice(['status', '--json'], cleanEnv({ SLUICE_DATA_DIR: dataDir }));
    expect(after.code).toBe(1);
    expect(JSON.parse(after.stdout)).toEqual({ up: false });
  });

  it('takes the broker down with it when the parent is SIGKILLed', async () => {
    const dataDir = await tempDataDir();
    const { proc, stack, ports } = await startUp(dataDir);
    proc.child.kill('SIGKILL');
    await proc.exited;
    await expectBrokerGone(stack, ports);
  });

  it('keeps topics and messages across a restart on the same data directory', async () => {
    const dataDir = await tempDataDir();
    const first = await startUp(dataDir);
    const topic = 'restart-check';
    let kafka = createKafka({ brokers: [first.stack.endpoints.kafka], clientId: 'restart-test' });
    const admin = kafka.admin();
    await admin.connect();
    await retryKafka(() => admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] }));
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'survives' }] });
    await producer.disconnect();
    first.proc.child.kill('SIGINT');
    await first.proc.exited;
    await expectBrokerGone(first.stack, first.ports);

    const second = await startUp(dataDir);
    expect(second.ports.port).toBe(first.ports.port);
    kafka = createKafka({ brokers: [second.stack.endpoints.kafka], clientId: 'restart-test' });
    const consumer = kafka.consumer({ groupId: 'restart-check-group' });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const values: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? '');
        await Promise.resolve();
      },
    });
    await waitUntil(() => values.length >= 1, 30_000, 'the message written before the restart');
    await consumer.disconnect();
    expect(values).toEqual(['survives']);
    const platform = createKafka({ brokers: [second.stack.endpoints.kafka], clientId: 'restart-test' }).admin();
    await platform.connect();
    expect(await platform.listTopics()).toEqual(expect.arrayContaining([topic, 'dlq', '_schemas', 'registry.models']));
    await platform.disconnect();

    second.proc.child.kill('SIGINT');
    await second.proc.exited;
    await expectBrokerGone(second.stack, second.ports);
  });

  it('exits within 30 s with the reason when its broker is SIGKILLed, and starts again on the same data directory', async () => {
    const dataDir = await tempDataDir();
    const { proc, stack } = await startUp(dataDir);
    const killedAt = Date.now();
    process.kill(stack.kafkaPid, 'SIGKILL');
    const { code } = await exitedOrDiagnosed(proc, 40_000);
    const seconds = (Date.now() - killedAt) / 1000;
    expect(seconds).toBeLessThan(30);
    expect(code).toBe(1);
    expect(proc.stderr()).toMatch(/the local Kafka broker exited unexpectedly/);

    const again = await startUp(dataDir);
    again.proc.child.kill('SIGINT');
    expect((await again.proc.exited).code).toBe(0);
    await expectBrokerGone(again.stack, again.ports);
  }, 400_000);

  it('ends within its stop bound on SIGINT while the broker hangs', async () => {
    const dataDir = await tempDataDir();
    const { proc, stack } = await startUp(dataDir);
    process.kill(stack.kafkaPid, 'SIGSTOP');
    try {
      const signalledAt = Date.now();
      proc.child.kill('SIGINT');
      // Past the bound, what its threads are doing is printed: a hang in exit leaves evidence.
      await exitedOrDiagnosed(proc, 100_000);
      // The bound is 90 s; a few more for the process to exit.
      expect((Date.now() - signalledAt) / 1000).toBeLessThan(95);
    } finally {
      if (processExists(stack.kafkaPid)) process.kill(stack.kafkaPid, 'SIGKILL');
    }
  }, 300_000);

  it('comes up from fresh data directories several times in a row', async () => {
    const starts = Number(process.env.FRESH_STARTS ?? 3);
    for (let start = 0; start < starts; start++) {
      const { proc, stack, ports } = await startUp(await tempDataDir());
      proc.child.kill('SIGINT');
      expect((await proc.exited).code, `start ${start + 1} of ${starts}`).toBe(0);
      await expectBrokerGone(stack, ports);
    }
  }, 900_000);
});
