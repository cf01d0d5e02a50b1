import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ProcStatError } from './errors.js';
import { cpuSecondsOf, parseProcStat, procStat, procStatSync } from './proc-stat.js';

describe('parseProcStat', () => {
  it('counts the fields after the last parenthesis, so a command name with spaces and parentheses does not shift them', () => {
    const rest = [
      'S',
      '1',
      '2',
      '3',
      '0',
      '-1',
      '4194304',
      '10',
      '0',
      '0',
      '0',
      '250',
      '75',
      '0',
      '0',
      '20',
      '0',
      '1',
      '0',
      '123456',
      '9999',
    ];
    const stat = parseProcStat(`4242 (odd) name (x)) ${rest.join(' ')}\n`);
    expect(stat).toEqual({ state: 'S', cpuSeconds: 3.25, startTime: '123456' });
    expect(() => parseProcStat('garbage', 7)).toThrow(ProcStatError);
    // Cut short, or a field that is not a number: an error, never zeros or NaN.
    expect(() => parseProcStat(`4242 (x) ${rest.slice(0, 19).join(' ')}`)).toThrow(/not a \/proc/);
    expect(() => parseProcStat(`4242 (x) ${rest.map((field, index) => (index === 11 ? 'x' : field)).join(' ')}`)).toThrow(/not a \/proc/);
  });
});

describe('procStat', () => {
  it("reads this process's figures, and a child's until it is gone", async () => {
    const own = await procStat(process.pid);
    expect(own?.state).toMatch(/^[RS]$/);
    expect(own?.cpuSeconds).toBeGreaterThan(0);
    expect(procStatSync(process.pid)?.startTime).toBe(own?.startTime);

    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const started = await procStat(pid);
    expect(started?.startTime).toMatch(/^\d+$/);
    expect(started?.startTime).not.toBe(own?.startTime);
    child.kill('SIGKILL');
    await exited;
    // Reaped by Node once its exit was seen: no such process any more.
    expect(await procStat(pid)).toBeUndefined();
    expect(procStatSync(pid)).toBeUndefined();
  });
});

describe('cpuSecondsOf', () => {
  it("gives a running process's CPU seconds, and an error for one never started", async () => {
    expect(await cpuSecondsOf({ pid: process.pid })).toBeGreaterThan(0);
    await expect(cpuSecondsOf({ pid: undefined })).rejects.toThrow(ProcStatError);
  });
});
