import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../common/random.js';
import { distinctTablesMemory, scaled, shared, SLOT_BYTES, SPILL, SPILLED_BYTES, ValueCounts } from './value-counts.js';

/**
 * Random adds and removes on one table, phase after phase (each a number of steps and the share of
 * adds), checked against a Map after every step; per phase, the most values held and the most
 * slots, and both at its end.
 */
interface Phase {
  readonly peak: number;
  readonly peakCapacity: number;
  /** The most occurrences of one value, during the phase and at its end. */
  readonly peakCount: number;
  readonly endCount: number;
  readonly heldBytes: number;
  readonly size: number;
  readonly capacity: number;
}

/** One occurrence of `value` more (`add`) or fewer, in the table and in its reference Map alike. */
function change(counts: ValueCounts, reference: Map<string, number>, value: string, add: boolean): void {
  if (add) {
    counts.add(value);
    reference.set(value, (reference.get(value) ?? 0) + 1);
    return;
  }
  counts.remove(value);
  const left = (reference.get(value) ?? 0) - 1;
  if (left > 0) reference.set(value, left);
  else reference.delete(value);
}

function against(pool: readonly string[], phases: readonly (readonly [steps: number, addShare: number])[], seed: number): Phase[] {
  const random = seededRandom(seed);
  const counts = new ValueCounts();
  const reference = new Map<string, number>();
  const mismatches = (): string[] => pool.filter((candidate) => counts.countOf(candidate) !== (reference.get(candidate) ?? 0));
  return phases.map(([steps, addShare]) => {
    let peak = 0;
    let peakCapacity = 0;
    let peakCount = 0;
    for (let step = 0; step < steps; step++) {
      const value = pool[Math.floor(random.next() * pool.length)] as string;
      change(counts, reference, value, random.next() < addShare);
      expect(counts.size).toBe(reference.size);
      expect(counts.countOf(value)).toBe(reference.get(value) ?? 0);
      // Never more than 3/4 full, so a probe always ends.
      expect(counts.size * 4).toBeLessThanOrEqual(counts.capacity * 3);
      peak = Math.max(peak, reference.size);
      peakCapacity = Math.max(peakCapacity, counts.capacity);
      peakCount = Math.max(peakCount, reference.get(value) ?? 0);
      // Every value, now and then: a shift on removal must not strand another key.
      if (step % 251 === 0) expect(mismatches()).toEqual([]);
    }
    expect(mismatches()).toEqual([]);
    const endCount = Math.max(0, ...reference.values());
    return { peak, peakCapacity, peakCount, endCount, heldBytes: counts.heldBytes, size: counts.size, capacity: counts.capacity };
  });
}

describe('ValueCounts', () => {
  it('counts like a Map through growth, removals, shrinking and crowded probes', () => {
    // Few values, many removals: small tables, long runs of neighbours shifted back on removal.
    const few = Array.from({ length: 40 }, (_, index) => `m-${index}`);
    expect(against(few, [[20_000, 0.5]], 1)[0]?.peak).toBeGreaterThan(20);
    // Many values: grows to thousands of slots, then drains to none and grows again.
    const many = Array.from({ length: 3_000 }, (_, index) => `session-${index * 7919}`);
    const [grown, drained, again] = against(
      many,
      [
        [30_000, 0.8],
        [60_000, 0.05],
        [2_000, 0.9],
      ],
      2,
    );
    expect(grown?.peak).toBeGreaterThan(2_000);
    // Drained, it gives its slots back.
    expect(drained?.capacity).toBeLessThan((drained?.peakCapacity ?? 0) / 10);
    expect(drained?.capacity).toBeLessThanOrEqual(Math.max(12, 8 * (drained?.size ?? 0)));
    expect(again?.peak).toBeGreaterThan(1_000);
  });

  it('counts beyond a byte (spilled) like a Map, through growth, removals, shifts and shrinking', () => {
    // Two hot values among 400 cold ones: the hot counts climb far past SPILL, then drain to none,
    // while the cold values make the table grow, shift its keys on removal and shrink again.
    const pool = [
      ...Array.from({ length: 300 }, () => 'hot-a'),
      ...Array.from({ length: 300 }, () => 'hot-b'),
      ...Array.from({ length: 400 }, (_, index) => `cold-${index}`),
    ];
    const [climbed, drained] = against(
      pool,
      [
        [20_000, 0.7],
        [60_000, 0.15],
      ],
      3,
    );
    expect(climbed?.peak).toBeGreaterThan(300);
    expect(climbed?.endCount).toBeGreaterThan(4 * SPILL);
    expect(climbed?.heldBytes).toBeGreaterThan((climbed?.capacity ?? 0) * SLOT_BYTES);
    // Drained: the hot counts back in their bytes (nothing spilled left), the table shrunk.
    expect(drained?.endCount).toBeLessThan(SPILL);
    expect(drained?.heldBytes).toBe((drained?.capacity ?? 0) * SLOT_BYTES);
    expect(drained?.capacity).toBeLessThan((climbed?.capacity ?? 0) / 2);
  });

  it('keeps a count of a byte or more from the small form when the table grows', () => {
    const table = new ValueCounts();
    for (let times = 0; times < SPILL + 45; times++) table.add('a');
    const before = distinctTablesMemory();
    for (let index = 0; index < 6; index++) table.add(`other-${index}`);
    expect(table.capacity).toBeGreaterThan(8);
    expect(table.countOf('a')).toBe(SPILL + 45);
    expect(table.heldBytes).toBe(table.capacity * SLOT_BYTES + SPILLED_BYTES);
    expect(distinctTablesMemory().bytes).toBe(before.bytes + table.heldBytes);
    for (let times = 0; times < 46; times++) table.remove('a');
    expect(table.countOf('a')).toBe(SPILL - 1);
    expect(table.heldBytes).toBe(table.capacity * SLOT_BYTES);
  });

  it('counts a spilled count in the table bytes and the memory figure, until it fits its byte again', () => {
    const table = new ValueCounts();
    for (let index = 0; index < 20; index++) table.add(`cold-${index}`);
    table.add('hot');
    const slots = table.capacity;
    const before = distinctTablesMemory();
    expect(table.heldBytes).toBe(slots * SLOT_BYTES);
    for (let times = 1; times < SPILL - 1; times++) table.add('hot');
    expect(table.countOf('hot')).toBe(SPILL - 1);
    expect(table.heldBytes).toBe(slots * SLOT_BYTES);
    table.add('hot');
    expect(table.countOf('hot')).toBe(SPILL);
    expect(table.heldBytes).toBe(slots * SLOT_BYTES + SPILLED_BYTES);
    expect(distinctTablesMemory().bytes).toBe(before.bytes + SPILLED_BYTES);
    for (let times = 0; times < 1_000; times++) table.add('hot');
    // The cold values leave: the table shrinks, and the spilled count moves with its id.
    for (let index = 0; index < 20; index++) table.remove(`cold-${index}`);
    expect(table.capacity).toBeLessThan(slots);
    expect(table.countOf('hot')).toBe(SPILL + 1_000);
    for (let times = 0; times < 1_001; times++) table.remove('hot');
    expect(table.countOf('hot')).toBe(SPILL - 1);
    expect(table.heldBytes).toBe(table.capacity * SLOT_BYTES);
    expect(distinctTablesMemory().bytes).toBe(before.bytes - (slots - table.capacity) * SLOT_BYTES);
    for (let times = 0; times < SPILL - 1; times++) table.remove('hot');
    expect(table.countOf('hot')).toBe(0);
    expect(table.size).toBe(0);
  });

  it('scales a hash into the table, below its size, for any hash and size', () => {
    for (const slots of [8, 12, 1_000, 0x20_0000, 0x20_0001, 0x3fff_ffff, 0x7fff_ffff]) {
      for (const hash of [0, 1, -1, 0x7fff_ffff, -0x8000_0000, 0xffff_ffff, 0x1234_5678]) {
        const slot = scaled(hash, slots);
        expect(Number.isInteger(slot) && slot >= 0 && slot < slots, `hash ${hash}, ${slots} slots: ${slot}`).toBe(true);
      }
    }
    // Spread over the whole table, not its start.
    expect(scaled(-1, 1_000)).toBe(999);
    expect(scaled(-1, 0x3fff_ffff)).toBe(0xffff_ffff % 0x3fff_ffff);
  });

  it('keeps strings that differ only in ways a weak hash might miss apart', () => {
    const counts = new ValueCounts();
    const values = [
      '',
      'a',
      'A',
      'ab',
      'ba',
      '\u0000',
      '\u0000\u0000',
      'é',
      'e\u0301',
      '𝟘',
      '\ud835',
      '1',
      '01',
      '1.0',
      'null',
      'undefined',
      // Values that are special as object keys, which the shared copy is made through.
      '__proto__',
      'constructor',
      'hasOwnProperty',
      '0',
      '-0',
      '4294967294',
      '4294967295',
      '9007199254740993',
      'NaN',
    ];
    for (const value of [...values, 'x'.repeat(256), 'y'.repeat(257), 'z'.repeat(20_000)]) expect(shared(value)).toBe(value);
    for (const [index, value] of values.entries()) for (let times = 0; times <= index; times++) counts.add(value);
    expect(counts.size).toBe(values.length);
    for (const [index, value] of values.entries()) expect(counts.countOf(value)).toBe(index + 1);
    counts.remove('absent');
    expect(counts.size).toBe(values.length);
    for (const [index, value] of values.entries()) for (let times = 0; times <= index; times++) counts.remove(value);
    expect(counts.size).toBe(0);
    for (const value of values) expect(counts.countOf(value)).toBe(0);
  });

  it('counts a table in the memory figure once it outgrows its small form, and releases its values once it is collected', async () => {
    // The collector, for this test only: a table dropped leaves the figure when it is collected.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    type Figure = ReturnType<typeof distinctTablesMemory>;
    const same = (now: Figure, last: Figure): boolean =>
      now.tables === last.tables && now.bytes === last.bytes && now.values === last.values;
    const collectUntil = async (done: (now: Figure, last: Figure) => boolean): Promise<Figure> => {
      const deadline = Date.now() + 10_000;
      let last = distinctTablesMemory();
      for (let round = 1; ; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
        const now = distinctTablesMemory();
        if ((round >= 3 && done(now, last)) || Date.now() >= deadline) return now;
        last = now;
      }
    };
    // Earlier tests' tables go first: the figure stops changing.
    const before = await collectUntil(same);
    let table: ValueCounts | undefined = new ValueCounts();
    const small = table.capacity;
    // Up to 3/4 of its first slots: not counted (no registration for the many small tables).
    for (let value = 0; value < (small * 3) / 4; value++) table.add(`v${value}`);
    expect(table.capacity).toBe(small);
    expect(distinctTablesMemory()).toEqual(before);
    for (let value = (small * 3) / 4; value < 1_000; value++) table.add(`v${value}`);
    expect(table.capacity).toBeGreaterThan(small);
    expect(distinctTablesMemory()).toEqual({
      tables: before.tables + 1,
      bytes: before.bytes + table.capacity * SLOT_BYTES,
      values: before.values + 1_000,
    });
    // A second table holding the same values holds the same ids: no more values.
    let second: ValueCounts | undefined = new ValueCounts();
    for (let value = 0; value < 500; value++) second.add(`v${value}`);
    expect(distinctTablesMemory().values).toBe(before.values + 1_000);
    // One of its counts beyond a byte: spilled, and counted until the table is collected.
    for (let times = 0; times < SPILL; times++) second.add('v1');
    expect(second.countOf('v1')).toBe(SPILL + 1);
    // Shrinking is counted too; a value leaves once no table holds it.
    const grown = table.capacity;
    for (let value = 0; value < 990; value++) table.remove(`v${value}`);
    expect(table.capacity).toBeLessThan(grown);
    expect(distinctTablesMemory()).toEqual({
      tables: before.tables + 2,
      bytes: before.bytes + (table.capacity + second.capacity) * SLOT_BYTES + SPILLED_BYTES,
      values: before.values + 500 + 10,
    });
    // A value freed and then held again by another table gets an id again, counted apart.
    table.add('v0');
    table.add('fresh');
    expect([table.countOf('v0'), second.countOf('v0'), table.countOf('fresh'), second.countOf('fresh')]).toEqual([1, 1, 1, 0]);
    second = undefined;
    // Collected: its values are released (those the first table holds stay).
    const released = await collectUntil((now) => now.tables === before.tables + 1);
    expect(released).toEqual({ tables: before.tables + 1, bytes: before.bytes + table.capacity * SLOT_BYTES, values: before.values + 12 });
    for (let value = 0; value < 1_000; value++) expect(table.countOf(`v${value}`)).toBe(value === 0 || value >= 990 ? 1 : 0);
    table = undefined;
    // Collected: back to the figure before it.
    const after = await collectUntil((now) => same(now, before));
    expect(after).toEqual(before);
  });

  it('counts like a Map in many tables that share values, some dropped and collected along the way, ids freed and given again', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const collected = async (): Promise<void> => {
      for (let round = 0; round < 3; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    await collected();
    const before = distinctTablesMemory().values;
    const random = seededRandom(7);
    const pool = Array.from({ length: 60 }, (_, index) => `shared-${index}`);
    const tables: { counts: ValueCounts; reference: Map<string, number> }[] = [];
    for (let round = 0; round < 40; round++) {
      while (tables.length < 8) tables.push({ counts: new ValueCounts(), reference: new Map() });
      for (let step = 0; step < 400; step++) {
        const { counts, reference } = tables[Math.floor(random.next() * tables.length)] as (typeof tables)[number];
        const value = pool[Math.floor(random.next() * pool.length)] as string;
        change(counts, reference, value, random.next() < 0.55);
      }
      for (const { counts, reference } of tables) {
        expect(counts.size).toBe(reference.size);
        expect(pool.filter((value) => counts.countOf(value) !== (reference.get(value) ?? 0))).toEqual([]);
      }
      // Drop two tables; now and then let the collector release their ids before the next round.
      tables.splice(Math.floor(random.next() * tables.length), 1);
      tables.splice(Math.floor(random.next() * tables.length), 1);
      if (round % 5 === 4) await collected();
    }
    // The values the large tables still hold have ids (a small one reports 8 slots, a large one 12
    // or more); once all are collected, none is left.
    const held = new Set(tables.filter(({ counts }) => counts.capacity > 8).flatMap(({ reference }) => [...reference.keys()]));
    expect(held.size).toBeGreaterThan(6);
    expect(distinctTablesMemory().values).toBeGreaterThanOrEqual(before + held.size);
    tables.length = 0;
    await collected();
    expect(distinctTablesMemory().values).toBe(before);
  });
});
