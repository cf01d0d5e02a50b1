import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers.js';
import { setUpPipeline, type Harness, type PipelineProcess } from './harness.js';

const EVENTS = 200_000;
const STORM_MS = 60_000;
const STEP_MS = 3_000;

describe('a rebalance storm: three instances of the fused pipeline, one stopped or started every 3 s', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await setUpPipeline('storm', { events: EVENTS });
  });

  afterAll(async () => {
    await harness.close();
  });

  it(`${EVENTS} events flowing for ${STORM_MS / 1000} s: every prediction and feature row exactly once, equal to a replay`, async () => {
    const running = new Map<string, PipelineProcess>();
    const names = ['a', 'b', 'c'];
    for (const name of names) running.set(name, harness.start(name));
    await Promise.all([...running.values()].map((instance) => instance.ready));

    // Events arrive during the whole storm, a slice per step.
    const steps = STORM_MS / STEP_MS;
    const slice = Math.ceil(harness.records.length / steps);
    let changes = 0;
    for (let step = 0; step < steps; step++) {
      const producing = harness.produce(harness.records.slice(step * slice, (step + 1) * slice));
      const name = names[step % names.length]!;
      const instance = running.get(name);
      if (instance) {
        // Alternately a clean stop and a crash.
        instance.child.kill(step % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
        await instance.exited;
        running.delete(name);
      } else {
        running.set(name, harness.start(name));
      }
      changes++;
      await producing;
      await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    }
    for (const name of names) if (!running.has(name)) running.set(name, harness.start(name));
    await Promise.all([...running.values()].map((instance) => instance.ready));
    await waitUntil(async () => (await harness.lag()) === 0, 300_000, 'the group to catch up');
    for (const instance of running.values()) instance.child.kill('SIGTERM');
    const codes = await Promise.all([...running.values()].map((instance) => instance.exited));

    const result = await harness.verify();
    console.log(`storm: ${changes} membership changes, ${JSON.stringify(result)}`);
    expect(changes).toBe(steps);
    expect(codes).toEqual([0, 0, 0]);
    expect(result.transactions).toBeGreaterThan(EVENTS / 2);
    expect(result.predictions).toBe(result.transactions);
    expect(result.duplicatePredictions).toBe(0);
    expect(result.missingPredictions).toBe(0);
    expect(result.scoreMismatches).toBe(0);
    expect(result.duplicateFeatureRows).toBe(0);
    expect(result.featureMismatches).toBe(0);
  }, 600_000);
});
