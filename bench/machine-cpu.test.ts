import { describe, expect, it } from 'vitest';
import { cpuSnapshot, cpuSpent, parseMachineCpu } from './machine-cpu.js';

describe('parseMachineCpu', () => {
  it('counts user, nice, system, irq, softirq and steal as busy, and idle and iowait beside them', () => {
    const text = 'cpu  1000 20 300 5000 40 6 7 8 90 0\ncpu0 500 10 150 2500 20 3 3 4 45 0\n';
    expect(parseMachineCpu(text)).toEqual({
      busy: (1000 + 20 + 300 + 6 + 7 + 8) / 100,
      total: (1000 + 20 + 300 + 6 + 7 + 8 + 5000 + 40) / 100,
    });
  });

  it('refuses a text that is not /proc/stat', () => {
    expect(() => parseMachineCpu('intr 1 2 3\n')).toThrow(/not the first line of \/proc\/stat/);
    expect(() => parseMachineCpu('cpu  1 2 x 4 5 6 7 8\n')).toThrow(/not the first line/);
  });
});

describe('cpuSnapshot', () => {
  it('sees this process spend CPU on its main thread, and the machine at least as much', async () => {
    // Spins until the main thread's own figure has grown by 0.15 s (on a loaded machine 300 ms of
    // wall time gave less than 0.1 s of CPU), within 20 s: a reader of the wrong thread never gets there.
    const before = await cpuSnapshot();
    const deadline = performance.now() + 20_000;
    let spent = cpuSpent(before, before);
    while (spent.mainThread < 0.15 && performance.now() < deadline) {
      const until = performance.now() + 50;
      while (performance.now() < until);
      spent = cpuSpent(before, await cpuSnapshot());
    }
    expect(spent.mainThread).toBeGreaterThanOrEqual(0.15);
    // The files are read one after another: a clock tick may fall between them.
    expect(spent.process).toBeGreaterThanOrEqual(spent.mainThread - 0.02);
    expect(spent.machineBusy).toBeGreaterThanOrEqual(spent.mainThread - 0.02);
    expect(spent.machineTotal).toBeGreaterThanOrEqual(spent.machineBusy);
    expect(spent.other).toBeUndefined();
  });

  it('reads another process by its pid, and refuses one that is gone', async () => {
    expect((await cpuSnapshot(process.pid)).other).toBeGreaterThan(0);
    await expect(cpuSnapshot(2 ** 22 + 1)).rejects.toThrow(/has ended/);
  });
});
