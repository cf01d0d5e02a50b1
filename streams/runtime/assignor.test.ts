import { describe, expect, it } from 'vitest';
import { planTasks } from './assignor.js';

const member = (memberId: string, previous: string[] = []) => ({ memberId, previous: new Set(previous) });
const tasks = ['a.0', 'a.1', 'a.2', 'a.3', 'a.4', 'a.5', 'b.0', 'b.1'];

describe('co-partitioned task planning', () => {
  it('gives every task to exactly one member, balanced within one', () => {
    const plan = planTasks(tasks, [member('m2'), member('m1'), member('m3')]);
    const all = [...plan.values()].flat();
    expect(all.sort()).toEqual([...tasks].sort());
    const sizes = [...plan.values()].map((list) => list.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('keeps tasks where they were when a member joins (only the new member gets moved tasks)', () => {
    const before = planTasks(tasks, [member('m1'), member('m2')]);
    const after = planTasks(tasks, [member('m1', before.get('m1')), member('m2', before.get('m2')), member('m3')]);
    for (const old of ['m1', 'm2']) {
      for (const task of after.get(old) ?? []) expect(before.get(old)).toContain(task);
    }
    expect(after.get('m3')?.length).toBeGreaterThanOrEqual(2);
  });

  it('hands a departed member tasks to the others', () => {
    const before = planTasks(tasks, [member('m1'), member('m2'), member('m3')]);
    const after = planTasks(tasks, [member('m1', before.get('m1')), member('m3', before.get('m3'))]);
    expect([...after.values()].flat().sort()).toEqual([...tasks].sort());
    for (const task of before.get('m1') ?? []) expect(after.get('m1')).toContain(task);
  });
});
