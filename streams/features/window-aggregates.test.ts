import { describe, expect, it } from 'vitest';
import { count, distinctCount, featureView, last, max, mean, min, slidingWindow, stddev, sum } from '../../topology/features.js';
import { payments } from '../../topology/fixtures/payments.js';
import { WindowAggregates, type MemberEvent } from './window-aggregates.js';

const view = featureView({
  name: 'v',
  source: payments,
  window: slidingWindow('1h'),
  features: {
    n: count(),
    total: sum('amount'),
    avg: mean('amount'),
    low: min('amount'),
    high: max('amount'),
    latest: last('amount'),
    merchants: distinctCount('merchant'),
    spread: stddev('amount'),
  },
  owner: 'test',
  description: 'test',
});

function filled(members: readonly MemberEvent[]): Record<string, number | null> {
  const window = new WindowAggregates(view);
  for (const member of members) window.add(member);
  return window.values((field) => valuesOf(members, field));
}

function valuesOf(members: readonly MemberEvent[], field: string): number[] {
  return members.map((member) => member.v[field]).filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
}

describe('WindowAggregates', () => {
  it('tells whether a new window would read its members, as a new window asked after its first member does', () => {
    const plain = featureView({
      name: 'plain',
      source: payments,
      window: slidingWindow('1h'),
      features: { total: sum('amount'), low: min('amount') },
      owner: 'test',
      description: 'test',
    });
    // A stddev reads the members only for a value whose square the sums cannot hold exactly.
    for (const amount of [0, -0, 2.5, -1e6, 1e300, -1e-200, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, null]) {
      const joining: MemberEvent = { v: { amount, merchant: 'm' } };
      for (const chosen of [view, plain]) {
        const asked = new WindowAggregates(chosen).readsMembersAfter([], joining);
        expect(WindowAggregates.readsMembersWhenFirst(chosen, joining), `${chosen.name} joined by ${amount}`).toBe(asked);
      }
    }
    expect(WindowAggregates.readsMembersWhenFirst(view, { v: { amount: 1e300, merchant: 'm' } })).toBe(true);
    expect(WindowAggregates.readsMembersWhenFirst(view, { v: { amount: 2.5, merchant: 'm' } })).toBe(false);
    expect(WindowAggregates.readsMembersWhenFirst(plain, { v: { amount: 1e300, merchant: 'm' } })).toBe(false);
  });

  it('keeps the oldest of equal extremes, as a pass does: +0 and −0 are told apart', () => {
    const plus = { v: { amount: 0, merchant: 'a' } };
    const minus = { v: { amount: -0, merchant: 'b' } };
    const window = new WindowAggregates(view);
    window.add(plus);
    window.add(minus);
    window.startSliding([plus, minus]);
    expect(Object.is(window.values(() => [])['low'], 0)).toBe(true);
    expect(Object.is(window.values(() => [])['high'], 0)).toBe(true);
    window.remove(plus);
    expect(Object.is(window.values(() => [])['low'], -0)).toBe(true);
    expect(Object.is(window.values(() => [])['latest'], -0)).toBe(true);
    window.remove(minus);
    expect(window.values(() => [])).toEqual({ n: 0, total: 0, avg: null, low: null, high: null, latest: null, merchants: 0, spread: null });
  });

  it('a window that slides gives what a pass over its members gives, bit for bit', () => {
    let state = 7;
    const next = () => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
      return state / 2_147_483_648;
    };
    const choices = [0, -0, 1, -1, 2.5, null, Number.NaN, Number.POSITIVE_INFINITY, 1e300, -1e300, 3e200];
    const window = new WindowAggregates(view);
    const members: MemberEvent[] = [];
    for (let step = 0; step < 3000; step++) {
      if (members.length > 0 && next() < 0.45) {
        // The queues of extremes are built once, from the members then held.
        if (!window.slides) window.startSliding(members);
        // A copy leaves (as one read back from the store would): members are told apart by join order.
        window.remove({ v: { ...(members.shift() as MemberEvent).v } });
      } else {
        const roll = next();
        const amount = roll < 0.5 ? (choices[Math.floor(next() * choices.length)] ?? null) : Math.round((next() - 0.5) * 2000) / 8;
        const merchant = next() < 0.1 ? null : `m${Math.floor(next() * 6)}`;
        const member = { v: { amount, merchant } };
        members.push(member);
        window.add(member);
      }
      expect(
        window.values((field) => valuesOf(members, field)),
        `step ${step}`,
      ).toEqual(filled(members));
    }
  });

  it('a window refuses to lose members before it starts sliding', () => {
    const window = new WindowAggregates(view);
    const member = { v: { amount: 1, merchant: 'a' } };
    window.add(member);
    expect(() => window.remove(member)).toThrow(/before it starts sliding/);
  });
});
