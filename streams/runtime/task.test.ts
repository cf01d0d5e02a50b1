import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { CacheBudget, int64Serde, KeyValueStore, RocksDatabase, TaskStores } from '../../state/index.js';
import type { CommitterFactory, InputOffset, PartitionCommitter, ProducedBatch } from './committer.js';
import type { StageDefinition } from './definition.js';
import { ValidationError } from './errors.js';
import type { SubTopologySpec } from './pipeline.js';
import { SEQUENCE_HEADER, type OutputRecord, type RawRecord } from './record.js';
import { canTransition, changelogEnds, RUNTIME_STORE, Task, type DeadLetterCount, type TaskOptions } from './task.js';

const raw = (offset: number, topic = 'in', value = `v${offset}`): RawRecord => ({
  topic,
  partition: 0,
  offset: String(offset),
  key: Buffer.from(`k${offset}`),
  value: Buffer.from(value),
  headers: {},
  timestamp: offset,
});

/** A stage that maps each record to one output on `out` (value + ":mapped"). */
function mapStage(overrides: Partial<StageDefinition<string>> = {}): StageDefinition<string> {
  return {
    name: 'map',
    inputs: ['in'],
    decode: (record) => record.value?.toString() ?? '',
    process: (record) => [{ topic: 'out', key: record.key, value: Buffer.from(`${record.value}:mapped`) }],
    ...overrides,
  };
}

interface Commit {
  readonly outputs: readonly OutputRecord[];
  readonly offsets: readonly InputOffset[];
}

/** A committer that records commits in memory and fails the ones it is told to (1-based attempts). */
function memoryCommitters(failures: number[] = [], failure: () => Error = () => new Error('commit failed')) {
  const commits: Commit[] = [];
  let opened = 0;
  let attempt = 0;
  const factory: CommitterFactory = {
    open: () => {
      opened++;
      const committer: PartitionCommitter = {
        commit: (outputs, offsets) => {
          attempt++;
          if (failures.includes(attempt)) return Promise.reject(failure());
          commits.push({ outputs, offsets });
          const produced: ProducedBatch[] = [];
          const changelogs = new Map<string, number>();
          for (const output of outputs.filter((entry) => entry.topic.endsWith('-changelog')))
            changelogs.set(output.topic, (changelogs.get(output.topic) ?? 0) + 1);
          for (const [topic, records] of changelogs) produced.push({ topic, partition: 0, baseOffset: 0n, records });
          return Promise.resolve(produced);
        },
        close: () => Promise.resolve(),
      };
      return Promise.resolve(committer);
    },
    close: () => Promise.resolve(),
  };
  return { factory, commits, opened: () => opened };
}

function task(committers: CommitterFactory, overrides: Partial<TaskOptions> = {}, steps?: SubTopologySpec['steps']) {
  const events = {
    admitted: 0,
    released: 0,
    seeks: [] as string[],
    resets: 0,
    fatal: [] as unknown[],
    deadLetters: 0,
    committedDeadLetters: [] as DeadLetterCount[],
  };
  const subtopology: SubTopologySpec = { name: 's', source: 'in', steps: steps ?? [{ stage: mapStage(), input: 'in' }] };
  const partitionTask = new Task({
    id: 's.0',
    subtopology,
    partition: 0,
    repartition: new Map(),
    committers,
    committedOffset: () => Promise.resolve('10'),
    endOffset: () => Promise.resolve(0n),
    seek: (topic, offset) => events.seeks.push(`${topic}@${offset}`),
    partitionOf: () => 0,
    dlqTopic: 'dlq',
    commitMaxRecords: 3,
    commitIntervalMs: 5,
    maxAttempts: 3,
    retryInitialDelayMs: 1,
    retryMaxDelayMs: 2,
    suspendTimeoutMs: 60_000,
    trustStoredOffsets: true,
    logger: silentLogger(),
    observeEventTime: () => undefined,
    watermark: () => Number.NEGATIVE_INFINITY,
    hooks: {
      onAdmitted: (count) => (events.admitted += count),
      onReleased: (count) => (events.released += count),
      onCommitted: (summary) => events.committedDeadLetters.push(...summary.deadLetters),
      onCommitFailed: () => undefined,
      onRecordFailed: () => events.deadLetters++,
      onRetry: () => undefined,
      onFatal: (error) => events.fatal.push(error),
      onStateChange: () => undefined,
      onReset: () => events.resets++,
    },
    ...overrides,
  });
  return { partitionTask, events };
}

const settle = (ms = 40) => new Promise((resolve) => setTimeout(resolve, ms));
const values = (commit: Commit | undefined, topic: string) =>
  (commit?.outputs ?? []).filter((output) => output.topic === topic).map((output) => output.value?.toString());

describe('changelogEnds', () => {
  it("takes the end of the last produce request when a partition's records span several", () => {
    const changelog = Array.from({ length: 8 }, () => ({ topic: 'c', partition: 2 }));
    const produced: ProducedBatch[] = [
      { topic: 'c', partition: 2, baseOffset: 100n, records: 5 },
      { topic: 'out', partition: 0, baseOffset: 7n },
      { topic: 'c', partition: 2, baseOffset: 105n, records: 3 },
    ];
    expect(changelogEnds(produced, changelog)).toEqual(new Map([['c', 108n]]));
  });
});

describe('Task state machine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('created', 'restoring')).toBe(true);
    expect(canTransition('restoring', 'running')).toBe(true);
    expect(canTransition('running', 'suspended')).toBe(true);
    expect(canTransition('suspended', 'restoring')).toBe(true);
    expect(canTransition('closed', 'running')).toBe(false);
    expect(canTransition('created', 'running')).toBe(false);
    expect(canTransition('suspended', 'running')).toBe(false);
    expect(canTransition('closing', 'running')).toBe(false);
  });
});

describe('Task', () => {
  it('opens its committer, then seeks to the committed offset before taking records', async () => {
    const { factory } = memoryCommitters();
    const { partitionTask, events } = task(factory);
    expect(partitionTask.accepting).toBe(false);
    await partitionTask.start();
    expect(partitionTask.accepting).toBe(true);
    expect(events.seeks).toEqual(['in@10']);
    expect(partitionTask.isDuplicate('in', '9')).toBe(true);
    expect(partitionTask.isDuplicate('in', '10')).toBe(false);
  });

  it('continues after records no fetch delivers only when the fetch began where it continues', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask } = task(factory);
    // Not running yet: its position is about to be set.
    expect(partitionTask.skipUnfetched('in', '10', '13')).toBe(false);
    await partitionTask.start();
    // A fetch from elsewhere (before a seek), or one that ends where the task already is: no move.
    expect(partitionTask.skipUnfetched('in', '11', '13')).toBe(false);
    expect(partitionTask.skipUnfetched('in', '10', '10')).toBe(false);
    expect(partitionTask.resumeOffset('in')).toBe('10');
    expect(partitionTask.skipUnfetched('in', '10', '13')).toBe(true);
    expect(partitionTask.resumeOffset('in')).toBe('13');
    expect(partitionTask.isDuplicate('in', '12')).toBe(true);
    // An idle task commits the position it moved to (no records): its group shows no lag there.
    await settle();
    expect(commits).toEqual([{ outputs: [], offsets: [{ topic: 'in', partition: 0, offset: '13' }] }]);
    partitionTask.admit('in', [raw(13)]);
    await settle();
    expect(commits.map((commit) => commit.offsets)).toEqual([
      [{ topic: 'in', partition: 0, offset: '13' }],
      [{ topic: 'in', partition: 0, offset: '14' }],
    ]);
  });

  it('a drain commits a position past skipped records that waits for its commit interval', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask } = task(factory, { commitMaxRecords: 100, commitIntervalMs: 10_000 });
    await partitionTask.start();
    expect(partitionTask.skipUnfetched('in', '10', '12')).toBe(true);
    await settle();
    expect(commits).toEqual([]);
    expect(partitionTask.inFlight).toBe(0);
    expect(await partitionTask.drain(1_000)).toBe(true);
    expect(commits.map((commit) => commit.offsets)).toEqual([[{ topic: 'in', partition: 0, offset: '12' }]]);
    // Nothing left: a second drain commits nothing.
    expect(await partitionTask.drain(1_000)).toBe(true);
    await partitionTask.close();
    expect(commits).toHaveLength(1);
  });

  it('commits a position past skipped records only with the records before them, in the commit after the chunk they follow', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask } = task(factory, { commitMaxRecords: 100, commitIntervalMs: 20 });
    await partitionTask.start();
    // 10–12 are taken at once; 13–14 wait in the queue, and the markers at 15–16 after them ride on their chunk.
    partitionTask.admit('in', [raw(10), raw(11), raw(12)]);
    partitionTask.admit('in', [raw(13), raw(14)]);
    expect(partitionTask.skipUnfetched('in', '15', '17')).toBe(true);
    await settle(100);
    const offsets = commits.map((commit) => commit.offsets.map((offset) => offset.offset));
    expect(offsets.at(-1)).toEqual(['17']);
    expect(offsets.flat()).not.toContain('15');
    // No commit carries the position before the records it follows.
    const withLast = commits.findIndex((commit) => values(commit, 'out').includes('v14:mapped'));
    expect(withLast).toBeGreaterThanOrEqual(0);
    expect(offsets.findIndex((entry) => entry.includes('17'))).toBe(withLast);
    expect(commits.flatMap((commit) => values(commit, 'out'))).toEqual([
      'v10:mapped',
      'v11:mapped',
      'v12:mapped',
      'v13:mapped',
      'v14:mapped',
    ]);
  });

  it('commits whole chunks (at most a commit of records each) by count and by time, with the offset after the last record', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11, 12, 13].map((offset) => raw(offset)),
    );
    partitionTask.admit(
      'in',
      [14].map((offset) => raw(offset)),
    );
    await settle();
    // The batch of four is two chunks (commitMaxRecords 3): the first is a commit by count, the rest follows by time.
    expect(commits.map((commit) => commit.offsets)).toEqual([
      [{ topic: 'in', partition: 0, offset: '13' }],
      [{ topic: 'in', partition: 0, offset: '15' }],
    ]);
    expect(values(commits[0], 'out')).toEqual(['v10:mapped', 'v11:mapped', 'v12:mapped']);
    expect(values(commits[1], 'out')).toEqual(['v13:mapped', 'v14:mapped']);
    expect(events.released).toBe(5);
    expect(partitionTask.inFlight).toBe(0);
  });

  it('after a failed commit, drops uncommitted work, opens a new committer and seeks back', async () => {
    const { factory, commits, opened } = memoryCommitters([1]);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11, 12].map((offset) => raw(offset)),
    );
    await settle();
    expect(commits).toEqual([]);
    expect(opened()).toBe(2);
    expect(events.seeks).toEqual(['in@10', 'in@10']);
    expect(partitionTask.inFlight).toBe(0);
    partitionTask.admit(
      'in',
      [10, 11, 12].map((offset) => raw(offset)),
    );
    await settle();
    expect(commits.map((commit) => commit.offsets[0]?.offset)).toEqual(['13']);
    expect(events.fatal).toEqual([]);
  });

  it('after a failed first commit with nothing committed yet, seeks back to the first record it took', async () => {
    const { factory, commits } = memoryCommitters([1]);
    const { partitionTask, events } = task(factory, { committedOffset: () => Promise.resolve('-1') });
    await partitionTask.start();
    expect(events.seeks).toEqual([]);
    partitionTask.admit(
      'in',
      [5, 6, 7].map((offset) => raw(offset)),
    );
    await settle();
    expect(commits).toEqual([]);
    expect(events.seeks).toEqual(['in@5']);
    expect(partitionTask.isDuplicate('in', '5')).toBe(false);
  });

  it('when fenced by a new owner, drops its work and waits for the group instead of fencing back', async () => {
    const fenced = () =>
      Object.assign(new Error('Producer attempted an operation with an old epoch'), { type: 'INVALID_PRODUCER_EPOCH', retriable: false });
    const { factory, opened, commits } = memoryCommitters([1], fenced);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11, 12].map((offset) => raw(offset)),
    );
    await settle();
    expect(partitionTask.suspended).toBe(true);
    expect(partitionTask.accepting).toBe(false);
    expect(opened()).toBe(1);
    expect(partitionTask.inFlight).toBe(0);
    await partitionTask.resume();
    expect(opened()).toBe(2);
    expect(partitionTask.accepting).toBe(true);
    expect(events.seeks).toEqual(['in@10', 'in@10']);
    expect(commits).toEqual([]);
    expect(events.fatal).toEqual([]);
  });

  it('does not count fences as failed commits: fenced again after every resume, the stage goes on', async () => {
    const fenced = () =>
      Object.assign(new Error('Producer attempted an operation with an old epoch'), { type: 'INVALID_PRODUCER_EPOCH', retriable: false });
    // The partition moves back and forth (a thawed zombie, members dropping out under load): every
    // time the group gives it back, the task is fenced again before it commits.
    const { factory, commits } = memoryCommitters([1, 2, 3, 4, 5, 6], fenced);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    for (let round = 0; round < 6; round++) {
      partitionTask.admit(
        'in',
        [10, 11, 12].map((offset) => raw(offset)),
      );
      await settle();
      expect(partitionTask.suspended).toBe(true);
      await partitionTask.resume('group');
    }
    expect(events.fatal).toEqual([]);
    partitionTask.admit(
      'in',
      [10, 11, 12].map((offset) => raw(offset)),
    );
    await settle();
    expect(events.fatal).toEqual([]);
    expect(commits).toHaveLength(1);
    expect(partitionTask.inFlight).toBe(0);
  });

  it('stops the stage after 5 fences the group never follows with an assignment (an expiring transaction)', async () => {
    const fenced = () =>
      Object.assign(new Error('Producer attempted an operation with an old epoch'), { type: 'INVALID_PRODUCER_EPOCH', retriable: false });
    // The broker expires every transaction: fenced, resumed by the suspension's timer, fenced again.
    const { factory } = memoryCommitters([1, 2, 3, 4, 5, 6], fenced);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    for (let round = 0; round < 4; round++) {
      partitionTask.admit(
        'in',
        [10, 11, 12].map((offset) => raw(offset)),
      );
      await settle();
      expect(partitionTask.suspended).toBe(true);
      await partitionTask.resume('timer');
    }
    expect(events.fatal).toEqual([]);
    partitionTask.admit(
      'in',
      [10, 11, 12].map((offset) => raw(offset)),
    );
    await settle();
    expect(events.fatal).toHaveLength(1);
    expect(String(events.fatal[0])).toContain('fenced 5 times without the group assigning it here again');
  });

  it('stops the stage when commits keep failing', async () => {
    const { factory } = memoryCommitters([1, 2, 3, 4, 5]);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    for (let round = 0; round < 5; round++) {
      partitionTask.admit(
        'in',
        [10, 11, 12].map((offset) => raw(offset)),
      );
      await settle();
    }
    expect(events.fatal).toHaveLength(1);
    expect(String(events.fatal[0])).toMatch(/5 commits of task s\.0 failed in a row/);
  });

  it('dead-letters a record whose processing fails for good, and retries a transient failure in place', async () => {
    const { factory, commits } = memoryCommitters();
    let transient = 1;
    const calls = new Map<string, number>();
    const stage = mapStage({
      process: (record) => {
        calls.set(record.value, (calls.get(record.value) ?? 0) + 1);
        if (record.value === 'bad') throw new ValidationError('RANGE', 'amount', 'amount out of range');
        if (record.value === 'flaky' && transient-- > 0) throw Object.assign(new Error('leader moved'), { retriable: true });
        return [{ topic: 'out', key: record.key, value: Buffer.from(record.value) }];
      },
    });
    const { partitionTask, events } = task(factory, {}, [{ stage, input: 'in' }]);
    await partitionTask.start();
    partitionTask.admit('in', [raw(10, 'in', 'bad'), raw(11, 'in', 'flaky'), raw(12, 'in', 'ok')]);
    await settle();
    expect(events.seeks).toEqual(['in@10']);
    expect(values(commits[0], 'out')).toEqual(['flaky', 'ok']);
    expect(
      commits[0]?.outputs.filter((output) => output.topic === 'dlq').map((output) => output.headers?.['sluice.dlq.error.code']),
    ).toEqual(['SLUICE_VALIDATION_RANGE']);
    expect(events.deadLetters).toBe(1);
    expect(events.committedDeadLetters).toEqual([{ stage: 'map', topic: 'in', reason: 'SLUICE_VALIDATION_RANGE', count: 1 }]);
    expect(events.fatal).toEqual([]);
    // Each attempt runs once.
    expect(Object.fromEntries(calls)).toEqual({ bad: 1, flaky: 2, ok: 1 });
  });

  it('counts a dead letter once it is committed: not the one of an aborted transaction', async () => {
    const { factory, commits } = memoryCommitters([1]);
    const stage = mapStage({
      process: (record) => {
        if (record.value === 'bad') throw new ValidationError('RANGE', 'amount', 'amount out of range');
        return [{ topic: 'out', key: record.key, value: Buffer.from(record.value) }];
      },
    });
    const { partitionTask, events } = task(factory, {}, [{ stage, input: 'in' }]);
    await partitionTask.start();
    partitionTask.admit('in', [raw(10, 'in', 'bad'), raw(11, 'in', 'ok')]);
    await settle();
    // The first commit failed: the group's fetch delivers the records again after the seek back.
    expect(commits).toEqual([]);
    expect(events.committedDeadLetters).toEqual([]);
    partitionTask.admit('in', [raw(10, 'in', 'bad'), raw(11, 'in', 'ok')]);
    await settle();
    expect(commits).toHaveLength(1);
    expect(events.deadLetters).toBe(2);
    expect(events.committedDeadLetters).toEqual([{ stage: 'map', topic: 'in', reason: 'SLUICE_VALIDATION_RANGE', count: 1 }]);
    expect(events.fatal).toEqual([]);
  });

  it('dead-letters an undecodable record (attempt 1) and retries a transient decode failure in place', async () => {
    const { factory, commits } = memoryCommitters();
    let transient = 2;
    const calls = new Map<string, number>();
    const stage = mapStage({
      decode: (record) => {
        const value = record.value?.toString() ?? '';
        calls.set(value, (calls.get(value) ?? 0) + 1);
        if (value === 'garbage') throw new ValidationError('SCHEMA_VIOLATION', undefined, 'not a record');
        if (value === 'flaky' && transient-- > 0) throw Object.assign(new Error('registry unreachable'), { retriable: true });
        return value;
      },
    });
    const { partitionTask, events } = task(factory, {}, [{ stage, input: 'in' }]);
    await partitionTask.start();
    partitionTask.admit('in', [raw(10, 'in', 'garbage'), raw(11, 'in', 'flaky'), raw(12, 'in', 'ok')]);
    await settle();
    expect(values(commits[0], 'out')).toEqual(['flaky:mapped', 'ok:mapped']);
    const dlq = commits[0]?.outputs.filter((output) => output.topic === 'dlq') ?? [];
    expect(dlq.map((output) => [output.headers?.['sluice.dlq.error.code'], output.headers?.['sluice.dlq.attempts']])).toEqual([
      ['SLUICE_VALIDATION_SCHEMA_VIOLATION', '1'],
    ]);
    // Each attempt runs once: the undecodable record once, the flaky one failed twice and decoded at the third.
    expect(Object.fromEntries(calls)).toEqual({ garbage: 1, flaky: 3, ok: 1 });
    expect(events.deadLetters).toBe(1);
    expect(events.fatal).toEqual([]);
  });

  it('treats promised decodes and outputs as answered ones: retried in place or dead-lettered, outputs in record order', async () => {
    const { factory, commits } = memoryCommitters();
    let transientDecode = 1;
    let transientProcess = 1;
    const retriable = (message: string) => Object.assign(new Error(message), { retriable: true });
    const stage = mapStage({
      // Some records decode at once, others later; failures come as rejections.
      decode: (record) => {
        const value = record.value?.toString() ?? '';
        if (value === 'garbage') return Promise.reject(new ValidationError('SCHEMA_VIOLATION', undefined, 'not a record'));
        if (value === 'flaky-decode' && transientDecode-- > 0) return Promise.reject(retriable('registry unreachable'));
        if (Number(record.offset) % 2 === 0) return value;
        return new Promise<string>((resolve) => setTimeout(() => resolve(value), 2));
      },
      eventTime: (value, record) => {
        if (value === 'no-time') throw new ValidationError('REQUIRED', 'event_time', 'no event time');
        return record.timestamp;
      },
      process: async (record) => {
        await Promise.resolve();
        if (record.value === 'bad') throw new ValidationError('RANGE', 'amount', 'amount out of range');
        if (record.value === 'flaky-process' && transientProcess-- > 0) throw retriable('leader moved');
        return [{ topic: 'out', key: record.key, value: Buffer.from(record.value) }];
      },
    });
    const { partitionTask, events } = task(factory, {}, [{ stage, input: 'in' }]);
    await partitionTask.start();
    // Offsets 10 to 18: odd ones decode later. 'no-time' has no event time: once decoded later, once at once.
    const inputs = ['garbage', 'flaky-decode', 'ok-1', 'bad', 'flaky-process', 'ok-2', 'ok-3', 'no-time', 'no-time'];
    partitionTask.admit(
      'in',
      inputs.map((value, index) => raw(10 + index, 'in', value)),
    );
    await settle(100);
    const outputs = commits.flatMap((commit) => commit.outputs);
    expect(
      outputs.map((output) =>
        output.topic === 'dlq' ? `dlq:${String(output.headers?.['sluice.dlq.error.code'])}` : output.value?.toString(),
      ),
    ).toEqual([
      'dlq:SLUICE_VALIDATION_SCHEMA_VIOLATION',
      'flaky-decode',
      'ok-1',
      'dlq:SLUICE_VALIDATION_RANGE',
      'flaky-process',
      'ok-2',
      'ok-3',
      'dlq:SLUICE_VALIDATION_REQUIRED',
      'dlq:SLUICE_VALIDATION_REQUIRED',
    ]);
    expect(events.deadLetters).toBe(4);
    expect(events.fatal).toEqual([]);
  });

  it('a failed task commits nothing more: a drain after the failure does not skip past the failed chunk', async () => {
    const { factory, commits } = memoryCommitters();
    const stage = mapStage({
      decode: (record) => {
        if (record.value?.toString() === 'poison') throw Object.assign(new Error('registry unreachable'), { retriable: true });
        return record.value?.toString() ?? '';
      },
    });
    const { partitionTask, events } = task(factory, { commitMaxRecords: 100, commitIntervalMs: 10_000 }, [{ stage, input: 'in' }]);
    await partitionTask.start();
    partitionTask.admit('in', [raw(10), raw(11)]);
    partitionTask.admit('in', [raw(12, 'in', 'poison'), raw(13)]);
    partitionTask.admit('in', [raw(14), raw(15)]);
    await settle(100);
    expect(events.fatal).toHaveLength(1);
    expect(partitionTask.status).toBe('failed');
    expect(await partitionTask.drain(200)).toBe(true);
    await partitionTask.close();
    expect(commits).toEqual([]);
    expect(events.released).toBe(events.admitted);
  });

  it('a task closed before its deferred start never opens', async () => {
    const { factory } = memoryCommitters();
    const { partitionTask, events } = task(factory);
    await partitionTask.close();
    await partitionTask.start();
    expect(partitionTask.status).toBe('closed');
    expect(events.seeks).toEqual([]);
    expect(events.fatal).toEqual([]);
  });

  it('drops everything uncommitted when closed', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask, events } = task(factory, { commitMaxRecords: 100, commitIntervalMs: 1_000 });
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11].map((offset) => raw(offset)),
    );
    await settle();
    await partitionTask.close();
    expect(commits).toEqual([]);
    expect(events.released).toBe(2);
    expect(partitionTask.status).toBe('closed');
  });
});

describe('Task in a fused sub-topology', () => {
  /** Step 1 (ingest-like) writes `mid`; step 2 reads `mid` and writes `out`. */
  const upstream = mapStage({
    name: 'up',
    process: (record) => [{ topic: 'mid', key: record.key, value: Buffer.from(`${record.value}>mid`) }],
  });
  const downstream: StageDefinition<string> = {
    name: 'down',
    inputs: ['mid'],
    decode: (record) => record.value?.toString() ?? '',
    process: (record) => [{ topic: 'out', key: record.key, value: Buffer.from(`${record.value}>out#${record.sequence}`) }],
  };
  const steps = [
    { stage: upstream, input: 'in' },
    { stage: downstream, input: 'mid' },
  ];

  it('hands a record to the next step in memory, stamped with its arrival sequence, and still writes it', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask } = task(
      factory,
      { repartition: new Map([['mid', 'mid-repartition']]), endOffset: () => Promise.resolve(100n) },
      steps,
    );
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11].map((offset) => raw(offset)),
    );
    await settle();
    const outputs = commits.flatMap((commit) => commit.outputs);
    expect(
      outputs.filter((output) => output.topic === 'mid').map((output) => [output.partition, output.headers?.[SEQUENCE_HEADER]]),
    ).toEqual([
      [0, '100'],
      [0, '101'],
    ]);
    expect(values(commits[0], 'out')).toEqual(['v10>mid>out#100', 'v11>mid>out#101']);
  });

  it('routes a record of another partition through the repartition topic, and the owner resumes it', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask } = task(factory, { repartition: new Map([['mid', 'mid-repartition']]), partitionOf: () => 3 }, steps);
    await partitionTask.start();
    partitionTask.admit('in', [raw(10)]);
    await settle();
    const outputs = commits.flatMap((commit) => commit.outputs);
    expect(outputs.map((output) => [output.topic, output.partition])).toEqual([['mid-repartition', 3]]);

    // The owner of partition 3 (here: a task of partition 0 reading its repartition input) writes and continues.
    const owner = memoryCommitters();
    const { partitionTask: ownerTask } = task(owner.factory, { repartition: new Map([['mid', 'mid-repartition']]) }, steps);
    await ownerTask.start();
    ownerTask.admit('mid-repartition', [raw(0, 'mid-repartition', 'v10>mid')]);
    await settle();
    const written = owner.commits.flatMap((commit) => commit.outputs);
    expect(written.map((output) => [output.topic, output.value?.toString()])).toEqual([
      ['mid', 'v10>mid'],
      ['out', 'v10>mid>out#0'],
    ]);
    expect(owner.commits[0]?.offsets).toEqual([{ topic: 'mid-repartition', partition: 0, offset: '1' }]);
  });
});

describe('Task with real RocksDB stores', () => {
  async function storesIn(root: string, store = 'count.counts', changelog = 'counts-changelog', cacheBudget?: CacheBudget) {
    return TaskStores.open({
      specs: [{ name: store, kind: 'key-value', serde: int64Serde }],
      dir: root,
      partition: 0,
      changelogTopic: () => changelog,
      kafka: undefined as never,
      // The changelog is empty: everything the store holds comes from this task's own commits.
      readChangelog: () => Promise.resolve({ records: 0, endOffset: '0', seconds: 0 }),
      logger: silentLogger(),
      ...(cacheBudget ? { cacheBudget } : {}),
    });
  }
  const counter = (gate?: () => Promise<void>): StageDefinition<string> => ({
    name: 'count',
    inputs: ['in'],
    decode: (record) => record.value?.toString() ?? '',
    stores: [{ name: 'counts', kind: 'key-value', serde: int64Serde }],
    process: async (record, context) => {
      const counts = context.store<KeyValueStore<number>>('counts');
      counts.put('k', ((await counts.get('k')) ?? 0) + 1);
      await gate?.();
      return [{ topic: 'out', key: null, value: Buffer.from(record.value) }];
    },
  });

  it('keeps committed state when the task is closed while its commit is in flight', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-'));
    let releaseCommit!: () => void;
    let started = 0;
    const committers: CommitterFactory = {
      open: () =>
        Promise.resolve({
          commit: (outputs) => {
            started++;
            const changelog = outputs.filter((output) => output.topic === 'counts-changelog').length;
            return new Promise<readonly ProducedBatch[]>((resolve) => {
              releaseCommit = () =>
                resolve(changelog > 0 ? [{ topic: 'counts-changelog', partition: 0, baseOffset: 0n, records: changelog }] : []);
            });
          },
          close: () => Promise.resolve(),
        }),
      close: () => Promise.resolve(),
    };
    const { partitionTask } = task(committers, { openStores: () => storesIn(root), commitMaxRecords: 2, commitIntervalMs: 10_000 }, [
      { stage: counter(), input: 'in' },
    ]);
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11].map((offset) => raw(offset)),
    );
    await settle();
    expect(started).toBe(1);
    // Revoked now: one more record is processed but never committed, and the commit is still in flight.
    partitionTask.admit('in', [raw(12)]);
    await settle(10);
    const closed = partitionTask.close();
    releaseCommit();
    await closed;

    const db = await RocksDatabase.open(path.join(root, 'count.counts', 'rocksdb'));
    const value = await db.get(Buffer.from('k'));
    await db.close();
    const checkpoint = JSON.parse(await fs.readFile(path.join(root, 'count.counts', 'checkpoint.json'), 'utf8')) as { offset: string };
    await fs.rm(root, { recursive: true, force: true });
    expect(value && int64Serde.deserialize(value)).toBe(2);
    expect(checkpoint.offset).toBe('1');
  });

  it("keeps a failed commit's writes readable until the record being processed is done (no state made up of two commits)", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-'));
    // A budget of 0 bytes: every entry leaves the object cache once its commit froze it, so reads
    // go to the write cache's layers and RocksDB, as a busy process's evicted entries do.
    const budget = new CacheBudget(0);
    const open = () => storesIn(root, 'pair.values', 'values-changelog', budget);
    let rejectCommit!: (error: Error) => void;
    let commitsStarted = 0;
    const committers: CommitterFactory = {
      open: () =>
        Promise.resolve({
          commit: () => {
            commitsStarted++;
            return commitsStarted === 1
              ? new Promise<readonly ProducedBatch[]>((_resolve, reject) => (rejectCommit = reject))
              : Promise.resolve([]);
          },
          close: () => Promise.resolve(),
        }),
      close: () => Promise.resolve(),
    };
    let releaseRead!: () => void;
    let reading!: () => void;
    const midRead = new Promise<void>((resolve) => (reading = resolve));
    // 'w' writes a and b together; 'r' reads a, waits, reads b: they must agree.
    const pair: StageDefinition<string> = {
      name: 'pair',
      inputs: ['in'],
      decode: (record) => record.value?.toString() ?? '',
      stores: [{ name: 'values', kind: 'key-value', serde: int64Serde }],
      process: async (record, context) => {
        const store = context.store<KeyValueStore<number>>('values');
        if (record.value === 'w') {
          const next = ((await store.get('a')) ?? 0) + 1;
          store.put('a', next);
          store.put('b', next);
          return [];
        }
        const a = await store.get('a');
        reading();
        await new Promise<void>((resolve) => (releaseRead = resolve));
        const b = await store.get('b');
        if (a !== b) throw new ValidationError('DAMAGED', 'b', `a is ${a}, b is ${b}`);
        return [{ topic: 'out', key: null, value: Buffer.from(`${a}`) }];
      },
    };
    const { partitionTask, events } = task(committers, { openStores: open, commitMaxRecords: 1, commitIntervalMs: 10_000 }, [
      { stage: pair, input: 'in' },
    ]);
    let stored: Buffer | undefined;
    try {
      await partitionTask.start();
      partitionTask.admit('in', [raw(10, 'in', 'w')]);
      await vi.waitFor(() => expect(commitsStarted).toBe(1));
      partitionTask.admit('in', [raw(11, 'in', 'r')]);
      await midRead;
      rejectCommit(new Error('commit failed'));
      await settle();
      releaseRead();
      // Started at 10, and back to 10 after the failed commit once the reset restored the stores.
      await vi.waitFor(() => expect(events.seeks).toEqual(['in@10', 'in@10']));
      await vi.waitFor(() => expect(partitionTask.status).toBe('running'));
      // The failed commit's writes are gone after the reset: the record counts from nothing again,
      // and its commit (the second) freezes and persists without meeting a leftover frozen layer.
      partitionTask.admit('in', [raw(10, 'in', 'w')]);
      await vi.waitFor(() => expect(commitsStarted).toBe(2));
      await partitionTask.close();
      const db = await RocksDatabase.open(path.join(root, 'pair.values', 'rocksdb'));
      stored = await db.get(Buffer.from('a'));
      await db.close();
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
    expect(events.deadLetters).toBe(0);
    expect(stored && int64Serde.deserialize(stored)).toBe(1);
    expect(events.fatal).toEqual([]);
  });

  it('never freezes state in the middle of a chunk: a commit holds the writes of exactly the records it commits', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-'));
    const { factory, commits } = memoryCommitters();
    // Each record waits a little while the commit timer (1 ms) fires.
    const slow = () => new Promise<void>((resolve) => setTimeout(resolve, 5));
    const { partitionTask } = task(factory, { openStores: () => storesIn(root), commitMaxRecords: 1_000, commitIntervalMs: 1 }, [
      { stage: counter(slow), input: 'in' },
    ]);
    await partitionTask.start();
    partitionTask.admit(
      'in',
      [10, 11, 12, 13].map((offset) => raw(offset)),
    );
    partitionTask.admit(
      'in',
      [14, 15].map((offset) => raw(offset)),
    );
    await settle(200);
    await partitionTask.close();
    await fs.rm(root, { recursive: true, force: true });
    // The counter's changelog value in each commit equals the records committed so far.
    let committed = 0;
    for (const commit of commits) {
      committed += commit.outputs.filter((output) => output.topic === 'out').length;
      const changelog = commit.outputs.filter((output) => output.topic === 'counts-changelog');
      expect(changelog.map((record) => (record.value ? int64Serde.deserialize(record.value) : null))).toEqual([committed]);
    }
    expect(committed).toBe(6);
  });

  it('positions at the offsets its restored state was committed with when the group answers an older one', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-'));
    const open = async () => {
      const stores = await TaskStores.open({
        specs: [
          { name: 'count.counts', kind: 'key-value', serde: int64Serde },
          { name: RUNTIME_STORE, kind: 'key-value', serde: int64Serde },
        ],
        dir: root,
        partition: 0,
        changelogTopic: (store) => `${store}-changelog`,
        kafka: undefined as never,
        readChangelog: () => Promise.resolve({ records: 0, endOffset: '0', seconds: 0 }),
        logger: silentLogger(),
      });
      // As if restored from a changelog whose last commit covered input up to offset 42.
      stores.store<KeyValueStore<number>>(RUNTIME_STORE).put('offset:in', 42);
      stores.freeze();
      await stores.commitLocal(new Map());
      return stores;
    };
    const { factory } = memoryCommitters();
    const { partitionTask, events } = task(factory, { openStores: open, committedOffset: () => Promise.resolve('30') }, [
      { stage: counter(), input: 'in' },
    ]);
    await partitionTask.start();
    await partitionTask.close();
    await fs.rm(root, { recursive: true, force: true });
    expect(events.seeks).toEqual(['in@42']);
  });
});
