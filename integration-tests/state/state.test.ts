import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { produceNumbered } from '../streams/helpers.js';
import { expectedCounts, lag, startCounter } from './stage-process.js';

const EVENTS = 500_000;
const KEYS = 1_000;

describe('state stores on the real broker and real RocksDB', () => {
  let kafka: Kafka;
  let admin: Admin;
  let root: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-state-'));
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await admin.disconnect();
    await fs.rm(root, { recursive: true, force: true });
  });

  async function setup(name: string) {
    const input = uniqueName(`${name}-in`);
    const prefix = `${uniqueName(name)}.`;
    await createTopic(admin, input, 6);
    await createTopic(admin, `${prefix}dlq`, 1);
    await produceNumbered(kafka, input, EVENTS, KEYS);
    const group = uniqueName(`${name}-group`);
    const env = (instance: string) => ({
      COUNT_INPUT: input,
      COUNT_GROUP: group,
      COUNT_DLQ: `${prefix}dlq`,
      COUNT_PREFIX: prefix,
      COUNT_BROKERS: inject('brokers').join(','),
      COUNT_STATE_DIR: path.join(root, name, instance),
      COUNT_DUMP: path.join(root, `${name}-${instance}.json`),
      COUNT_SESSION_TIMEOUT_MS: String(Math.max(2_000, inject('minSessionTimeoutMs'))),
    });
    return { input, group, env };
  }

  it(`exactly_once counting over ${EVENTS} events survives 10 SIGKILLs with exact final state`, async () => {
    const { input, group, env } = await setup('crash');
    for (let kill = 0; kill < 10; kill++) {
      const counter = startCounter(env('a'));
      children.push(counter.child);
      await counter.ready;
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 1_500));
      counter.child.kill('SIGKILL');
      await counter.exited;
    }
    const final = startCounter(env('a'));
    children.push(final.child);
    await final.ready;
    await waitUntil(async () => (await lag(admin, group, input)) === 0, 240_000, 'the counter to catch up');
    const state = await final.dump(env('a').COUNT_DUMP);
    final.child.kill('SIGTERM');
    expect(await final.exited).toBe(0);
    expect(state).toEqual(expectedCounts(EVENTS, KEYS));
  });

  it('restores from the changelog when the local RocksDB directory is lost', async () => {
    const { input, group, env } = await setup('lostdisk');
    const first = startCounter(env('a'));
    children.push(first.child);
    await first.ready;
    await waitUntil(async () => (await lag(admin, group, input)) < EVENTS * 0.7, 120_000, 'some progress');
    first.child.kill('SIGKILL');
    await first.exited;
    await fs.rm(env('a').COUNT_STATE_DIR, { recursive: true, force: true });

    const second = startCounter(env('a'));
    children.push(second.child);
    await second.ready;
    await waitUntil(async () => (await lag(admin, group, input)) === 0, 240_000, 'the counter to catch up');
    const state = await second.dump(env('a').COUNT_DUMP);
    second.child.kill('SIGTERM');
    await second.exited;
    expect(state).toEqual(expectedCounts(EVENTS, KEYS));
  });

  it('scales out: two processes in one group, one killed and restarted twice, union equals the reference', async () => {
    const { input, group, env } = await setup('scaleout');
    const steady = startCounter(env('a'));
    children.push(steady.child);
    await steady.ready;
    for (let round = 0; round < 2; round++) {
      const flaky = startCounter(env('b'));
      children.push(flaky.child);
      await flaky.ready;
      await new Promise((resolve) => setTimeout(resolve, 1_000 + Math.random() * 1_000));
      flaky.child.kill('SIGKILL');
      await flaky.exited;
    }
    const last = startCounter(env('b'));
    children.push(last.child);
    await last.ready;
    await waitUntil(async () => (await lag(admin, group, input)) === 0, 240_000, 'the group to catch up');
    // Both own partitions now; each dumps its own.
    await waitUntil(
      async () => {
        const [a, b] = await Promise.all([steady.dump(env('a').COUNT_DUMP), last.dump(env('b').COUNT_DUMP)]);
        return Object.keys(a).length > 0 && Object.keys(b).length > 0 && Object.keys(a).length + Object.keys(b).length === KEYS;
      },
      60_000,
      'both processes to own restored partitions',
    );
    const a = await steady.dump(env('a').COUNT_DUMP);
    const b = await last.dump(env('b').COUNT_DUMP);
    for (const key of Object.keys(a)) expect(b[key]).toBeUndefined();
    const expected = expectedCounts(EVENTS, KEYS);
    const wrong = Object.entries({ ...a, ...b })
      .filter(([key, count]) => expected[key] !== count)
      .map(([key, count]) => `${key}: ${count} (${key in a ? 'a' : 'b'})`);
    expect(wrong).toEqual([]);
    expect({ ...a, ...b }).toEqual(expected);
    steady.child.kill('SIGTERM');
    last.child.kill('SIGTERM');
    await Promise.all([steady.exited, last.exited]);
  });
});
