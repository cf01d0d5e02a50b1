import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../kafka/index.js';
import { avroType, loadAvsc } from '../../schemas/index.js';
import type { StackState } from '../../app/stack.js';
import demo from '../../examples/fraud/sluice.config.js';
import { readToEnd, waitUntil } from '../helpers.js';
import { cleanEnv, DEMO_TOPOLOGY, spawnSluice, waitForOutput, type SluiceProcess } from './sluice-process.js';

/**
 * `sluice run features` (its own consumer group) and `sluice run pipeline` (the stack's group: it
 * takes tasks over from `sluice up`) beside `sluice up`, all on one data directory. Tasks move
 * between processes that share `<dataDir>/state`; a task folder another live process holds is
 * waited for, never wiped. Afterwards every task folder is still there, nothing was logged at
 * ERROR, and every event has exactly one prediction.
 */
interface LockFile {
  readonly pid: number;
  readonly task: string;
}

const EVENTS = 'events.transactions';
const PREDICTIONS = 'predictions.fraud';

describe('processes sharing one data directory', () => {
  const running: SluiceProcess[] = [];
  let dataDir: string | undefined;

  afterAll(async () => {
    for (const proc of running) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  const env = (): NodeJS.ProcessEnv => cleanEnv({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPOLOGY: undefined });
  const spawn = (args: readonly string[]): SluiceProcess => {
    const proc = spawnSluice(args, env());
    running.push(proc);
    return proc;
  };
  const up = async (rate: string): Promise<{ proc: SluiceProcess; stack: StackState; kafka: Kafka }> => {
    const proc = spawn(['up', '--demo', '--topology', DEMO_TOPOLOGY, '--history', '4000', '--rate', rate]);
    await waitForOutput(proc, /sluice is up/, 180_000);
    const stack = JSON.parse(await fs.readFile(path.join(dataDir!, 'stack.json'), 'utf8')) as StackState;
    return { proc, stack, kafka: createKafka({ brokers: stack.endpoints.kafka.split(','), clientId: 'shared-data-dir-test' }) };
  };
  const stop = async (proc: SluiceProcess): Promise<void> => {
    proc.child.kill('SIGINT');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 120_000);
    const { code } = await proc.exited;
    clearTimeout(timer);
    expect(code, proc.stderr().slice(-3_000)).toBe(0);
  };
  const errorLines = (proc: SluiceProcess): string[] =>
    proc
      .stderr()
      .split('\n')
      .filter((line) => line.includes('"level":50'));
  /** Every task folder of a group, with its lock's holder (if held). */
  const taskFolders = async (group: string): Promise<Map<string, LockFile | undefined>> => {
    const root = path.join(dataDir!, 'state', group);
    const folders = new Map<string, LockFile | undefined>();
    for (const task of await fs.readdir(root).catch(() => [])) {
      const lock = await fs.readFile(path.join(root, task, '.lock'), 'utf8').catch(() => undefined);
      folders.set(task, lock === undefined ? undefined : (JSON.parse(lock) as LockFile));
    }
    return folders;
  };
  /** Each store folder of a task with a checkpoint: state that a wipe would remove. */
  const checkpoints = async (group: string): Promise<string[]> => {
    const found: string[] = [];
    for (const task of (await taskFolders(group)).keys()) {
      const dir = path.join(dataDir!, 'state', group, task);
      for (const store of await fs.readdir(dir)) {
        if (await fs.stat(path.join(dir, store, 'checkpoint.json')).catch(() => undefined)) found.push(`${task}/${store}`);
      }
    }
    return found.sort();
  };

  it('sluice run features and sluice run pipeline beside sluice up: no state deleted, every event predicted once', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-shared-'));

    // ---- sluice up with live demo traffic and its first model ----------------------------------
    const first = await up('25');
    await waitForOutput(first.proc, /model fraud v1 trained from replayed topics/, 300_000);
    await waitUntil(async () => (await checkpoints('sluice-pipeline')).length > 0, 60_000, 'the pipeline to checkpoint its state');
    const stateBefore = await checkpoints('sluice-pipeline');

    // ---- beside it: the features stage as its own group, and a second pipeline process ---------
    const features = spawn(['run', 'features']);
    await waitForOutput(features, /stage features running/, 120_000);
    const second = spawn(['run', 'pipeline']);
    await waitForOutput(second, /stage pipeline running/, 120_000);
    const secondPid = second.child.pid;
    // The second process takes tasks over from the first: their folders are locked by it (its
    // pid, or a child's: anything but the stack's own process).
    await waitUntil(
      async () => [...(await taskFolders('sluice-pipeline')).values()].some((lock) => lock !== undefined && lock.pid !== first.stack.pid),
      180_000,
      `a task of sluice-pipeline locked by the second process (pid ${secondPid})`,
    );
    await waitUntil(async () => (await checkpoints('sluice-features')).length > 0, 180_000, 'sluice run features to checkpoint its state');
    // Let both work side by side with events flowing, then stop them (their tasks go back).
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    await stop(second);
    await stop(features);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    await stop(first.proc);

    // ---- nothing deleted -------------------------------------------------------------------------
    const stateAfter = await checkpoints('sluice-pipeline');
    for (const store of stateBefore) expect(stateAfter).toContain(store);
    expect(await checkpoints('sluice-features')).not.toEqual([]);
    for (const proc of [first.proc, second, features]) {
      expect(errorLines(proc)).toEqual([]);
      expect(proc.stderr()).not.toMatch(/wip(e|ing)|corrupt/i);
    }

    // ---- the stack again, without live traffic, to finish what remains; then every event once ------
    const last = await up('0');
    const admin = last.kafka.admin();
    await admin.connect();
    try {
      // Done when the group's committed offset of every raw partition is past its last record (a
      // transactional producer's commit marker may follow it: the end offset itself is never reached).
      const drained = async (): Promise<boolean> => {
        const lags = await Promise.all(
          demo.sources.map(async (source) => {
            const topic = `raw.${source.name}`;
            const [records, committed] = await Promise.all([
              readToEnd(last.kafka, topic),
              admin.fetchOffsets({ groupId: 'sluice-pipeline', topics: [topic] }),
            ]);
            const after = new Map<number, bigint>();
            for (const record of records) {
              const next = BigInt(record.offset) + 1n;
              if (next > (after.get(record.partition) ?? 0n)) after.set(record.partition, next);
            }
            const done = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]));
            return [...after].every(([partition, next]) => (done.get(partition) ?? -1n) >= next);
          }),
        );
        return lags.every(Boolean);
      };
      await waitUntil(drained, 180_000, 'sluice-pipeline to reach the end of every raw topic');
    } finally {
      await admin.disconnect();
    }
    const source = demo.sources.find((candidate) => `events.${candidate.name}` === EVENTS)!;
    const eventsType = avroType(source.eventsSchema);
    const predictionsType = avroType(loadAvsc('predictions'));
    const eventIds = (await readToEnd(last.kafka, EVENTS)).map(
      (message) => (eventsType.fromBuffer(message.value!.subarray(5)) as { event_id: string }).event_id,
    );
    const predicted = (await readToEnd(last.kafka, PREDICTIONS)).map(
      (message) => (predictionsType.fromBuffer(message.value!.subarray(5)) as { event_id: string }).event_id,
    );
    await stop(last.proc);
    expect(errorLines(last.proc)).toEqual([]);

    expect(new Set(eventIds).size).toBe(eventIds.length);
    expect(eventIds.length).toBeGreaterThan(2_000); // --history 4000 spans every source: most are transactions
    const counts = new Map<string, number>();
    for (const id of predicted) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts].filter(([, count]) => count > 1)).toEqual([]);
    expect(eventIds.filter((id) => !counts.has(id))).toEqual([]);
    expect(predicted.length).toBe(eventIds.length);
  }, 900_000);
});
