import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import type { CommitterFactory, PartitionCommitter } from './committer.js';
import { PartitionTask, type PartitionTaskOptions } from './partition-task.js';
import type { OutputRecord, RawRecord } from './record.js';

const raw = (offset: number): RawRecord => ({
  topic: 't',
  partition: 0,
  offset: String(offset),
  key: null,
  value: Buffer.from(`v${offset}`),
  headers: {},
  timestamp: offset,
});

/** A committer that records commits in memory and fails the ones it is told to. */
function memoryCommitters(failures: number[] = []) {
  const commits: { outputs: number; next: string }[] = [];
  let opened = 0;
  let attempt = 0;
  const factory: CommitterFactory = {
    open: () => {
      opened++;
      const committer: PartitionCommitter = {
        commit: (outputs: readonly OutputRecord[], next: string) => {
          attempt++;
          if (failures.includes(attempt)) return Promise.reject(new Error(`commit ${attempt} failed`));
          commits.push({ outputs: outputs.length, next });
          return Promise.resolve([]);
        },
        close: () => Promise.resolve(),
      };
      return Promise.resolve(committer);
    },
    close: () => Promise.resolve(),
  };
  return { factory, commits, opened: () => opened };
}

function task(committers: CommitterFactory, overrides: Partial<PartitionTaskOptions> = {}) {
  const events = { admitted: 0, released: 0, seeks: [] as string[], resets: 0, fatal: [] as unknown[] };
  const partitionTask = new PartitionTask({
    topic: 't',
    partition: 0,
    process: (record) => Promise.resolve({ raw: record, outputs: [{ topic: 'out', key: null, value: record.value }] }),
    committers,
    committedOffset: () => Promise.resolve('10'),
    seek: (offset) => events.seeks.push(offset),
    commitMaxRecords: 3,
    commitIntervalMs: 5,
    logger: silentLogger(),
    onAdmitted: (count) => (events.admitted += count),
    onReleased: (count) => (events.released += count),
    onCommitted: () => undefined,
    onCommitFailed: () => undefined,
    onFatal: (error) => events.fatal.push(error),
    onStateChange: () => undefined,
    onReset: () => events.resets++,
    ...overrides,
  });
  return { partitionTask, events };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe('PartitionTask', () => {
  it('opens its committer, then seeks to the committed offset before taking records', async () => {
    const { factory } = memoryCommitters();
    const { partitionTask, events } = task(factory);
    expect(partitionTask.accepting).toBe(false);
    await partitionTask.start();
    expect(partitionTask.accepting).toBe(true);
    expect(events.seeks).toEqual(['10']);
    expect(partitionTask.isDuplicate('9')).toBe(true);
    expect(partitionTask.isDuplicate('10')).toBe(false);
  });

  it('commits in batches by count and by time, with the offset after the last record', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit([10, 11, 12, 13].map(raw));
    await settle();
    expect(commits).toEqual([
      { outputs: 3, next: '13' },
      { outputs: 1, next: '14' },
    ]);
    expect(events.admitted).toBe(4);
    expect(events.released).toBe(4);
    expect(partitionTask.inFlight).toBe(0);
    expect(partitionTask.isDuplicate('13')).toBe(true);
  });

  it('after a failed commit, drops uncommitted work, opens a new committer and seeks back', async () => {
    const { factory, commits, opened } = memoryCommitters([1]);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit([10, 11, 12].map(raw));
    await settle();
    expect(commits).toEqual([]);
    expect(opened()).toBe(2);
    expect(events.seeks).toEqual(['10', '10']);
    expect(events.resets).toBe(2); // at start and at the reset
    expect(partitionTask.inFlight).toBe(0);
    // The records come again from the committed offset and commit this time.
    partitionTask.admit([10, 11, 12].map(raw));
    await settle();
    expect(commits).toEqual([{ outputs: 3, next: '13' }]);
    expect(events.fatal).toEqual([]);
  });

  it('after a failed first commit with nothing committed yet, seeks back to the first record it took', async () => {
    const { factory, commits } = memoryCommitters([1]);
    const { partitionTask, events } = task(factory, { committedOffset: () => Promise.resolve('-1') });
    await partitionTask.start();
    expect(events.seeks).toEqual([]);
    partitionTask.admit([5, 6, 7].map(raw));
    await settle();
    expect(commits).toEqual([]);
    expect(events.seeks).toEqual(['5']);
    expect(partitionTask.isDuplicate('5')).toBe(false);
  });

  it('when fenced by a new owner, drops its work and waits for the group instead of fencing back', async () => {
    const fenced = Object.assign(new Error('Producer attempted an operation with an old epoch'), {
      type: 'INVALID_PRODUCER_EPOCH',
      retriable: false,
    });
    let opened = 0;
    let attempt = 0;
    const factory: CommitterFactory = {
      open: () => {
        opened++;
        return Promise.resolve({
          commit: () => (++attempt === 1 ? Promise.reject(fenced) : Promise.resolve([])),
          close: () => Promise.resolve(),
        });
      },
      close: () => Promise.resolve(),
    };
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    partitionTask.admit([10, 11, 12].map(raw));
    await settle();
    expect(partitionTask.suspended).toBe(true);
    expect(partitionTask.accepting).toBe(false);
    expect(opened).toBe(1);
    expect(partitionTask.inFlight).toBe(0);
    // The group assigns it here again: reopened (fencing the other), back at the committed offset.
    await partitionTask.resume();
    expect(opened).toBe(2);
    expect(partitionTask.accepting).toBe(true);
    expect(events.seeks).toEqual(['10', '10']);
    expect(events.fatal).toEqual([]);
  });

  it('stops the stage when commits keep failing', async () => {
    const { factory } = memoryCommitters([1, 2, 3, 4, 5]);
    const { partitionTask, events } = task(factory);
    await partitionTask.start();
    for (let round = 0; round < 5; round++) {
      partitionTask.admit([10, 11, 12].map(raw));
      await settle();
    }
    expect(events.fatal).toHaveLength(1);
    expect(String(events.fatal[0])).toMatch(/5 commits of t\/0 failed in a row/);
  });

  it('reports a failing process function as fatal (the runtime turns record errors into dead letters first)', async () => {
    const { factory } = memoryCommitters();
    const { partitionTask, events } = task(factory, { process: () => Promise.reject(new Error('stage must stop')) });
    await partitionTask.start();
    partitionTask.admit([raw(10)]);
    await settle();
    expect(events.fatal).toHaveLength(1);
  });

  it('drops everything uncommitted when closed', async () => {
    const { factory, commits } = memoryCommitters();
    const { partitionTask, events } = task(factory, { commitMaxRecords: 100, commitIntervalMs: 1_000 });
    await partitionTask.start();
    partitionTask.admit([10, 11].map(raw));
    await partitionTask.close();
    await settle();
    expect(commits).toEqual([]);
    expect(events.released).toBe(2);
    expect(partitionTask.accepting).toBe(false);
  });
});

describe('PartitionTask with real RocksDB stores', () => {
  it('keeps committed state when the partition is revoked while its commit is in flight', async () => {
    const fs = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const { TaskStores, int64Serde, RocksDatabase } = await import('../../state/index.js');
    type Counts = import('../../state/index.js').KeyValueStore<number>;
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-task-'));
    const openStores = () =>
      TaskStores.open({
        specs: [{ name: 'counts', kind: 'key-value', serde: int64Serde }],
        stateDir: root,
        groupId: 'g',
        partition: 0,
        changelogTopic: () => 'counts-changelog',
        kafka: undefined as never,
        // The changelog is empty: everything the store holds comes from this task's own commits.
        readChangelog: () => Promise.resolve({ records: 0, endOffset: '0', seconds: 0 }),
        logger: silentLogger(),
      });
    let releaseCommit!: () => void;
    const commitStarted: { outputs: readonly OutputRecord[] }[] = [];
    const committers: CommitterFactory = {
      open: () =>
        Promise.resolve({
          commit: (outputs: readonly OutputRecord[]) => {
            commitStarted.push({ outputs });
            const changelog = outputs.filter((output) => output.topic === 'counts-changelog').length;
            return new Promise((resolve) => {
              releaseCommit = () => resolve([{ topic: 'counts-changelog', partition: 0, baseOffset: 0n }].filter(() => changelog > 0));
            });
          },
          close: () => Promise.resolve(),
        }),
      close: () => Promise.resolve(),
    };
    let stores: Awaited<ReturnType<typeof openStores>> | undefined;
    const { partitionTask } = task(committers, {
      openStores: async () => (stores = await openStores()),
      process: async (record) => {
        const counts = stores!.store<Counts>('counts');
        counts.put('k', ((await counts.get('k')) ?? 0) + 1);
        return { raw: record, outputs: [] };
      },
      commitMaxRecords: 2,
      commitIntervalMs: 10_000,
    });
    await partitionTask.start();
    partitionTask.admit([10, 11].map(raw));
    await settle();
    expect(commitStarted).toHaveLength(1);
    // Revoked now: one more record is processed but never committed, and the commit is still in flight.
    const closed = partitionTask.close();
    releaseCommit();
    await closed;

    const db = await RocksDatabase.open(path.join(root, 'g', 'counts', '0', 'rocksdb'));
    const value = await db.get(Buffer.from('k'));
    await db.close();
    const checkpoint = JSON.parse(await fs.readFile(path.join(root, 'g', 'counts', '0', 'checkpoint.json'), 'utf8')) as { offset: string };
    await fs.rm(root, { recursive: true, force: true });
    expect(value && int64Serde.deserialize(value)).toBe(2);
    expect(checkpoint.offset).toBe('1');
  });
});
