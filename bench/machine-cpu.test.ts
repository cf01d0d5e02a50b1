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
    const before = await cpuSnapshot();
    const until = performance.now() + 300;
    let spin = 0;
    while (performance.now() < until) spin++;
    const spent = cpuSpent(before, await cpuSnapshot());
    expect(spin).toBeGreaterThan(0);
    expect(spent.mainThread).toBeGreaterThan(0.1);
    expect(spent.process).toBeGreaterThanOrEqual(spent.mainThread);
    expect(spent.machineBusy).toBeGreaterThanOrEqual(spent.mainThread - 0.02);
    expect(spent.machineTotal).toBeGreaterThanOrEqual(spent.machineBusy);
    expect(spent.other).toBeUndefined();
  });

  it('reads another process by its pid, and refuses one that is gone', async () => {
    expect((await cpuSnapshot(process.pid)).other).toBeGreaterThan(0);
    await expect(cpuSnapshot(2 ** 22 + 1)).rejects.toThrow(/has ended/);
  });
});
