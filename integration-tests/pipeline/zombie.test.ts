import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers.js';
import { setUpPipeline, type Harness } from './harness.js';

const EVENTS = 60_000;

describe('a zombie: an instance frozen mid-transaction while another takes over, then thawed', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await setUpPipeline('zombie', { events: EVENTS });
  });

  afterAll(async () => {
    await harness.close();
  });

  it('the frozen instance is fenced: its writes never show, every output exactly once', async () => {
    const a = harness.start('a');
    const b = harness.start('b');
    await Promise.all([a.ready, b.ready]);
    const half = Math.floor(harness.records.length / 2);
    await harness.produce(harness.records.slice(0, half));
    // Freeze a while it works (its open transaction stays open), long past its session timeout.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pendingWhenFrozen = await harness.lag();
    a.child.kill('SIGSTOP');
    await harness.produce(harness.records.slice(half));
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    // b owns everything now; a wakes up believing it still does.
    a.child.kill('SIGCONT');
    await waitUntil(async () => (await harness.lag()) === 0, 300_000, 'the group to catch up');
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    const codes = await Promise.all([a.exited, b.exited]);

    const result = await harness.verify();
    console.log(`zombie: ${pendingWhenFrozen} records pending when frozen, ${JSON.stringify(result)}`);
    expect(pendingWhenFrozen).toBeGreaterThan(0);
    expect(codes).toEqual([0, 0]);
    expect(result.predictions).toBe(result.transactions);
    expect(result.duplicatePredictions).toBe(0);
    expect(result.missingPredictions).toBe(0);
    expect(result.scoreMismatches).toBe(0);
    expect(result.duplicateFeatureRows).toBe(0);
    expect(result.featureMismatches).toBe(0);
  }, 300_000);
});
