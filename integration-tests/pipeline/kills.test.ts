import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers.js';
import { setUpPipeline, type Harness } from './harness.js';

const EVENTS = 200_000;
const KILLS = 10;

describe('the fused pipeline (ingest → features → inference) SIGKILLed at random points', () => {
  let harness: Harness;

  beforeAll(async () => {
    // A state cache of 1 MiB: the entities' histories (about 7 MiB serialized) are evicted and read
    // back from RocksDB all along, so the kills also land between evictions and reloads.
    harness = await setUpPipeline('kills', { events: EVENTS, stateCacheMb: 1 });
    await harness.produce(harness.records);
  });

  afterAll(async () => {
    await harness.close();
  });

  it(`${KILLS} kills over ${EVENTS} events: every prediction and feature row exactly once, equal to a replay`, async () => {
    let kills = 0;
    let killsWithWorkPending = 0;
    while (kills < KILLS) {
      const pipeline = harness.start('a');
      await pipeline.ready;
      await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 1_000));
      if ((await harness.lag()) > 0) killsWithWorkPending++;
      pipeline.child.kill('SIGKILL');
      await pipeline.exited;
      kills++;
    }
    const final = harness.start('a');
    await final.ready;
    await waitUntil(async () => (await harness.lag()) === 0, 300_000, 'the pipeline to catch up');
    final.child.kill('SIGTERM');
    expect(await final.exited).toBe(0);

    const result = await harness.verify();
    console.log(`kills: ${kills} (${killsWithWorkPending} with work pending), ${JSON.stringify(result)}`);
    expect(kills).toBe(KILLS);
    expect(killsWithWorkPending).toBe(KILLS);
    expect(result.transactions).toBeGreaterThan(EVENTS / 2);
    expect(result.predictions).toBe(result.transactions);
    expect(result.duplicatePredictions).toBe(0);
    expect(result.missingPredictions).toBe(0);
    expect(result.scoreMismatches).toBe(0);
    expect(result.duplicateFeatureRows).toBe(0);
    expect(result.featureMismatches).toBe(0);
    expect(result.featureRows).toBeGreaterThan(EVENTS);
  }, 600_000);
});
