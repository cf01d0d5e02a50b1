import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { PROJECT_ROOT } from '../../common/config.js';
import type { Guarantee } from '../../streams/runtime/index.js';
import { createTopic, groupLag as lag, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { produceNumbered } from './helpers.js';
import { tieToParent } from '../../common/child-tie.js';

const RECORDS = 300_000;
const KILLS = 10;
/** Input kept ahead of the group before each run (topped up by this much when less is left). */
const TOP_UP = 250_000;
const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'map-stage.ts');

interface StageProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
}

function startStage(env: Record<string, string>): StageProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: PROJECT_ROOT,
  });
  tieToParent(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('READY')) resolve();
    });
    void exited.then((code) => reject(new Error(`stage exited (${code}) before it was ready: ${stderr}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

describe('crash recovery: a stage SIGKILLed at random points and restarted', () => {
  let kafka: Kafka;
  let admin: Admin;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await admin.disconnect();
  });

  it.each([
    ['exactly_once', 'every output exactly once'],
    ['at_least_once', 'every output at least once'],
  ] as [Guarantee, string][])(`%s: ${RECORDS}+ records, ${KILLS} kills → %s`, async (guarantee) => {
    const input = uniqueName('crash-in');
    const output = uniqueName('crash-out');
    const dlq = uniqueName('crash-dlq');
    const groupId = uniqueName('crash-group');
    await createTopic(admin, input, 6);
    await createTopic(admin, output, 6);
    await createTopic(admin, dlq, 1);
    await produceNumbered(kafka, input, RECORDS, 1_000);
    // Every kill must land with input left: a run that got through the whole input would leave the
    // next one nothing to commit (and the test waiting). Runs got faster than the test was sized
    // for, so the input is topped up before a run that has less than TOP_UP records ahead of it.
    let produced = RECORDS;
    const topUp = async (): Promise<void> => {
      if ((await lag(admin, groupId, input)) >= TOP_UP) return;
      await produceNumbered(kafka, input, TOP_UP, 1_000, 5_000, produced);
      produced += TOP_UP;
    };
    const env = {
      MAP_INPUT: input,
      MAP_OUTPUT: output,
      MAP_DLQ: dlq,
      MAP_GROUP: groupId,
      MAP_GUARANTEE: guarantee,
      MAP_BROKERS: inject('brokers').join(','),
      MAP_SESSION_TIMEOUT_MS: String(Math.max(2_000, inject('minSessionTimeoutMs'))),
    };

    let kills = 0;
    let killsWithWorkPending = 0;
    while (kills < KILLS) {
      await topUp();
      const lagAtStart = await lag(admin, groupId, input);
      const stage = startStage(env);
      children.push(stage.child);
      await stage.ready;
      // Wait until this run has committed work of its own (it owns partitions and its transactions
      // flow), then let it work for a random while and kill it without warning: mid-batch, mid-transaction.
      await waitUntil(async () => (await lag(admin, groupId, input)) < lagAtStart, 120_000, 'the stage to commit work');
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 600));
      const pending = await lag(admin, groupId, input);
      stage.child.kill('SIGKILL');
      await stage.exited;
      kills++;
      if (pending > 0) killsWithWorkPending++;
    }
    const remainingBeforeFinalRun = await lag(admin, groupId, input);

    const final = startStage(env);
    children.push(final.child);
    await final.ready;
    await waitUntil(async () => (await lag(admin, groupId, input)) === 0, 180_000, 'the group to catch up');
    final.child.kill('SIGTERM');
    expect(await final.exited).toBe(0);

    // Read every output partition, read_committed, to its end offset.
    const messages = (await readToEnd(kafka, output)).map((message) => ({ value: message.value?.toString() ?? '' }));
    const expected = new Set(Array.from({ length: produced }, (_, i) => `value-${i}:mapped`));
    const counts = new Map<string, number>();
    for (const message of messages) counts.set(message.value, (counts.get(message.value) ?? 0) + 1);
    const missing = [...expected].filter((value) => !counts.has(value));
    const duplicated = [...counts].filter(([, count]) => count > 1).length;
    const unexpected = [...counts.keys()].filter((value) => !expected.has(value));

    console.log(
      `${guarantee}: ${kills} kills (${killsWithWorkPending} with work pending), ${produced} records, ${remainingBeforeFinalRun} left for the final run, ${messages.length} outputs read, ${duplicated} duplicated`,
    );
    expect(kills).toBe(KILLS);
    // Every kill hit a stage with input still to process: it was mid-way, not idle.
    expect(killsWithWorkPending).toBe(KILLS);
    expect(missing).toEqual([]);
    expect(unexpected).toEqual([]);
    // at_least_once may duplicate (a kill between producing and committing offsets) but need not:
    // outputs are produced at commit time, so most kills land before them. Only loss is checked.
    if (guarantee === 'exactly_once') {
      expect(duplicated).toBe(0);
      expect(messages).toHaveLength(produced);
      // A kill inside an open transaction leaves its records in the log, aborted, unseen by
      // read_committed. How many kills land there is timing (a transaction's records are sent
      // just before its commit), so this is reported, not asserted; the at-least-once run's
      // duplicates show kills landing between outputs and their offsets' commit.
      const written = await readToEnd(kafka, output, { uncommitted: true });
      console.log(`exactly_once: ${written.length - produced} aborted records in the log`);
    }
  });
});
