import { randomBytes } from 'node:crypto';

/**
 * How many times each string occurs, in two forms, for the kept windows of distinct counts (one
 * table per field, for as long as its entity is active; in the memory run, `npm run bench --
 * pipeline --rss`, they were the state that grew most):
 *
 * - **small**, up to SMALL_VALUES values: the values and their counts in two short arrays,
 *   searched in order. Most tables stay so (a card's merchants within an hour).
 * - **large**, from the value after that on: open addressing with linear probing, a slot being a
 *   value's id (`ValueIds`, shared by every table of the process) and its count: SLOT_BYTES (5) a
 *   slot, in one ArrayBuffer outside V8's heap (the ids as an `Int32Array`, then the counts as a
 *   `Uint8Array`), at most 3/4 full, growing by half and shrinking below 1/4 full. A count beyond
 *   SPILL - 1 marks its byte SPILL and is kept in the table's `spilled` Map instead (a value
 *   occurring hundreds of times in one window: rare). Before, a slot was the id and a 4-byte count
 *   (8 bytes), and before that the value's string itself (12 bytes a slot, 8 of them on V8's heap,
 *   which the collector's slack then multiplied).
 *
 * Counts are exact: a value is found by `===` among the small ones, by its id (a `Map`) among
 * the large. The slot's hash is seeded per process, so which ids share a slot cannot be chosen
 * from outside.
 */
export class ValueCounts {
  /** The small form's values (the engine's shared copies: `shared`), or undefined once large. */
  private values: string[] | undefined = [];
  private counts: number[] = [];
  /** The large form: slot i holds a value's id + 1 at ids[i] (0: empty) and its count at counts8[i] (SPILL: in `spilled`). */
  private ids = EMPTY_IDS;
  private counts8 = EMPTY_COUNTS;
  /** The counts of SPILL or more, by id. */
  private spilled: Map<number, number> | undefined;
  private slots = 0;
  private used = 0;
  /** What the collector's callback needs once this table is gone: its ids, their slots and the spilled counts. */
  private held: HeldTable | undefined;

  /** Distinct values held. */
  get size(): number {
    return this.used;
  }

  /** Slots allocated (at most 3/4 of them are used; below 1/4 the table shrinks); SMALL_SLOTS while small. */
  get capacity(): number {
    return this.values ? SMALL_SLOTS : this.slots;
  }

  /**
   * The bytes of what grows with the values: while small, up to SMALL_VALUES values' references
   * and counts (8 bytes each), then its slots (SLOT_BYTES each) and its spilled counts (about
   * SPILLED_BYTES each). The values' strings are shared by every table (`ValueIds`), not counted.
   */
  get heldBytes(): number {
    return this.values ? SMALL_VALUES * 16 : this.slots * SLOT_BYTES + (this.spilled?.size ?? 0) * SPILLED_BYTES;
  }

  /** One more occurrence of `value`. */
  add(value: string): void {
    const values = this.values;
    if (values) {
      const index = values.indexOf(value);
      if (index >= 0) {
        this.counts[index] = counted((this.counts[index] as number) + 1);
        return;
      }
      if (values.length < SMALL_VALUES) {
        values.push(shared(value));
        this.counts.push(1);
        this.used++;
        return;
      }
      this.grow();
    }
    const known = valueIds.idOf(value);
    if (known !== undefined) {
      const slot = this.slotOf(known);
      if (this.ids[slot] === known + 1) {
        this.setCount(slot, known, counted(this.countAt(slot, known) + 1));
        return;
      }
    }
    if ((this.used + 1) * 4 > this.slots * 3) this.allocate(Math.ceil(this.slots * 1.5));
    this.place(valueIds.hold(value, known), 1);
    this.used++;
  }

  /** One occurrence of `value` fewer: at none, the value is no longer held (a value not held is left alone). */
  remove(value: string): void {
    const values = this.values;
    if (values) {
      const index = values.indexOf(value);
      if (index < 0) return;
      const count = this.counts[index] as number;
      if (count > 1) {
        this.counts[index] = count - 1;
        return;
      }
      // Order does not matter: the last takes its place.
      const last = values.length - 1;
      values[index] = values[last] as string;
      this.counts[index] = this.counts[last] as number;
      values.pop();
      this.counts.pop();
      this.used--;
      return;
    }
    const id = valueIds.idOf(value);
    if (id === undefined) return;
    const slot = this.slotOf(id);
    if (this.ids[slot] !== id + 1) return;
    const count = this.countAt(slot, id);
    if (count > 1) {
      this.setCount(slot, id, count - 1);
      return;
    }
    this.vacate(slot);
    valueIds.release(id);
    this.used--;
    if (this.slots > LARGE_SLOTS && this.used * 4 < this.slots) this.allocate(Math.max(LARGE_SLOTS, Math.ceil((this.slots * 2) / 3)));
  }

  /** The occurrences of `value` (0 if not held). */
  countOf(value: string): number {
    if (this.values) {
      const index = this.values.indexOf(value);
      return index < 0 ? 0 : (this.counts[index] as number);
    }
    const id = valueIds.idOf(value);
    if (id === undefined) return 0;
    const slot = this.slotOf(id);
    return this.ids[slot] === id + 1 ? this.countAt(slot, id) : 0;
  }

  /** The count of the id `id`, held at `slot`. */
  private countAt(slot: number, id: number): number {
    const count = this.counts8[slot] as number;
    return count === SPILL ? (this.spilled?.get(id) as number) : count;
  }

  /** Sets the count of the id `id`, held at `slot`: in its byte below SPILL, else in `spilled`. */
  private setCount(slot: number, id: number, count: number): void {
    if (count < SPILL) {
      if (this.counts8[slot] === SPILL) this.unspill(id);
      this.counts8[slot] = count;
      return;
    }
    let spilled = this.spilled;
    if (!spilled) spilled = this.spilled = new Map();
    if (!spilled.has(id)) heldTables.spilled++;
    spilled.set(id, count);
    this.counts8[slot] = SPILL;
    (this.held as HeldTable).spilled = spilled.size;
  }

  /** The id `id`'s count leaves `spilled`. */
  private unspill(id: number): void {
    const spilled = this.spilled as Map<number, number>;
    spilled.delete(id);
    heldTables.spilled--;
    (this.held as HeldTable).spilled = spilled.size;
    // An empty Map would stay on V8's heap, uncounted.
    if (spilled.size === 0) this.spilled = undefined;
  }

  /**
   * From small to large: the values get ids, the table its slots and its registration. What can
   * throw (the ids' Map at its limit, an allocation) comes before the table changes form, and the
   * ids held by then are released: the table stays small and whole. (After it, only a count of
   * SPILL or more from the small form allocates: its `spilled` Map, short of memory alone.)
   */
  private grow(): void {
    const values = this.values as string[];
    const ids: number[] = [];
    try {
      for (const value of values) ids.push(valueIds.hold(value, valueIds.idOf(value)));
      this.allocate(LARGE_SLOTS);
    } catch (error) {
      for (const id of ids) valueIds.release(id);
      throw error;
    }
    this.values = undefined;
    for (let index = 0; index < ids.length; index++) {
      const id = ids[index] as number;
      const slot = this.slotOf(id);
      this.ids[slot] = id + 1;
      this.setCount(slot, id, this.counts[index] as number);
    }
    this.counts = [];
  }

  /** The slot holding id `id`, or the empty slot where it would go. */
  private slotOf(id: number): number {
    const { ids, slots } = this;
    const key = id + 1;
    let slot = homeOf(id, slots);
    for (;;) {
      const held = ids[slot];
      if (held === 0 || held === key) return slot;
      slot = slot + 1 === slots ? 0 : slot + 1;
    }
  }

  /**
   * Empties a slot, moving later keys of its run back into the gap when their home slot allows
   * (backward-shift deletion: no tombstones, so probes stay short). Its count is 1 (a value leaves
   * at its last occurrence), so never spilled.
   */
  private vacate(slot: number): void {
    const { ids, counts8, slots } = this;
    /** How far `to` is after `from`, going round. */
    const after = (from: number, to: number): number => (to >= from ? to - from : to + slots - from);
    let hole = slot;
    let next = hole + 1 === slots ? 0 : hole + 1;
    for (let key = ids[next] as number; key !== 0; key = ids[next] as number) {
      // The key may move into the hole if the hole is on its probe path (home … next).
      if (after(homeOf(key - 1, slots), next) >= after(hole, next)) {
        ids[hole] = key;
        counts8[hole] = counts8[next] as number;
        hole = next;
      }
      next = next + 1 === slots ? 0 : next + 1;
    }
    ids[hole] = 0;
    counts8[hole] = 0;
  }

  /** Puts an id known to be absent, with its count's byte (a SPILL byte keeps its count in `spilled`, by id). */
  private place(id: number, countByte: number): void {
    const slot = this.slotOf(id);
    this.ids[slot] = id + 1;
    this.counts8[slot] = countByte;
  }

  /** New slots for the large form, the held keys placed again. */
  private allocate(slots: number): void {
    const oldIds = this.ids;
    const oldCounts = this.counts8;
    const buffer = new ArrayBuffer(slots * SLOT_BYTES);
    this.ids = new Int32Array(buffer, 0, slots);
    this.counts8 = new Uint8Array(buffer, slots * 4, slots);
    this.slots = slots;
    if (!this.held) {
      this.held = { ids: this.ids, slots: 0, spilled: 0 };
      heldTables.tables++;
      collected.register(this, this.held);
    }
    heldTables.slots += slots - this.held.slots;
    this.held.slots = slots;
    this.held.ids = this.ids;
    for (let index = 0; index < oldIds.length; index++) {
      const key = oldIds[index] as number;
      if (key !== 0) this.place(key - 1, oldCounts[index] as number);
    }
  }
}

/** A large table's ids, slots and spilled counts as the collector's callback sees them (kept apart from the table, which it must not keep alive). */
interface HeldTable {
  ids: Int32Array;
  slots: number;
  spilled: number;
}

/**
 * The ids of the values that large tables hold, shared by every table of the process: one copy of
 * each value's string, however many tables hold it, and 4 bytes a slot instead of a reference.
 * Each id counts the tables that hold it; at none, the id is freed for another value (a field of
 * ever new values, such as session ids, does not leak). A table dropped holds its ids until the
 * collector has freed it (`collected`), so an id is never given to another value while a table,
 * even one no longer reachable, holds it.
 */
class ValueIds {
  private readonly ids = new Map<string, number>();
  private values: (string | undefined)[] = [];
  private holders = new Int32Array(1_024);
  private readonly free: number[] = [];

  /** The id of `value`, if some table holds it. */
  idOf(value: string): number | undefined {
    return this.ids.get(value);
  }

  /** How many values have an id. */
  get size(): number {
    return this.ids.size;
  }

  /** One more table holds `value` (whose id is `known`, if it has one): its id. */
  hold(value: string, known: number | undefined): number {
    if (known !== undefined) {
      this.holders[known] = (this.holders[known] as number) + 1;
      return known;
    }
    const id = this.free.pop() ?? this.values.length;
    if (id === this.values.length) this.values.push(undefined);
    if (id >= this.holders.length) {
      const holders = new Int32Array(this.holders.length * 2);
      holders.set(this.holders);
      this.holders = holders;
    }
    const copy = shared(value);
    this.values[id] = copy;
    this.ids.set(copy, id);
    this.holders[id] = 1;
    return id;
  }

  /** One table fewer holds id `id`: at none, the id is freed. */
  release(id: number): void {
    const left = (this.holders[id] as number) - 1;
    this.holders[id] = left;
    if (left > 0) return;
    this.ids.delete(this.values[id] as string);
    this.values[id] = undefined;
    this.free.push(id);
  }
}

const valueIds = new ValueIds();

/**
 * The large tables, their slots and their spilled counts, until the collector has freed them: the
 * distinct-count state held in memory (`distinctTablesMemory`). A table registers when it becomes
 * large, so the many small ones cost no registration; once collected, its ids are released.
 */
const heldTables = { tables: 0, slots: 0, spilled: 0 };
const collected = new FinalizationRegistry<HeldTable>((held) => {
  heldTables.tables--;
  heldTables.slots -= held.slots;
  heldTables.spilled -= held.spilled;
  for (const key of held.ids) if (key !== 0) valueIds.release(key - 1);
});

/** The bytes one slot of a large table takes: a value's id (4, in an Int32Array) and its count (1, in a Uint8Array). */
export const SLOT_BYTES = 5;

/** A count's byte that says the count is in the table's `spilled` Map: counts up to SPILL - 1 are in the byte. */
export const SPILL = 0xff;

/** About what a spilled count takes in a `Map` (an estimate, for the cache's budget and the gauge). */
export const SPILLED_BYTES = 32;

/**
 * The large distinct-count tables (ValueCounts beyond SMALL_VALUES values) not yet collected: how
 * many, the bytes of their slots (SLOT_BYTES each, in ArrayBuffers outside V8's heap) and of
 * their spilled counts (SPILLED_BYTES each, an estimate), and how many values they hold ids for (each one string, shared by every table; not in `bytes`). A table
 * dropped but not yet collected still counts: it still takes memory.
 */
export function distinctTablesMemory(): { readonly tables: number; readonly bytes: number; readonly values: number } {
  return { tables: heldTables.tables, bytes: heldTables.slots * SLOT_BYTES + heldTables.spilled * SPILLED_BYTES, values: valueIds.size };
}

/**
 * The engine's one copy of a string's content (V8 internalizes the keys of objects): every table
 * that holds a value then shares one string. The engine's table of such strings holds them
 * weakly, so one that no table holds any more is collected. A key that is an array index comes
 * back as a new string (the engine keeps such keys as numbers), and a long value as it is: equal,
 * only not shared.
 */
export function shared(value: string): string {
  // A long value is left as it is: V8 hashes a string beyond 16,383 units by its length alone, so
  // many such strings of one length would crowd one bucket of its table (ids are far shorter).
  if (value.length > SHARED_LENGTH) return value;
  const holder: Record<string, 0> = { [value]: 0 };
  for (const key in holder) return key;
  return value;
}

/** The longest value `shared` makes one copy of. */
const SHARED_LENGTH = 256;

/** The most values a table holds in its small form, and the slots it is counted as then. */
const SMALL_VALUES = 6;
const SMALL_SLOTS = 8;
/** A large table's fewest slots: its first values fill it up to 7/12. */
const LARGE_SLOTS = 12;
const MAX_COUNT = 0x7fff_ffff;
const EMPTY_IDS = new Int32Array(0);
const EMPTY_COUNTS = new Uint8Array(0);

/** A count, checked against the most a table counts (a 31-bit integer, as when counts were in an Int32Array). */
function counted(count: number): number {
  if (count > MAX_COUNT) throw new RangeError(`ValueCounts holds a value ${MAX_COUNT} times, the most it counts`);
  return count;
}

/** This process's hash seed. */
const SEED = randomBytes(4).readUInt32LE(0);

/** The slot an id's probe starts at: its hash, scaled to the table. */
function homeOf(id: number, slots: number): number {
  return scaled(hashOf(id), slots);
}

/**
 * A 32-bit hash scaled to [0, slots): multiplied and divided by 2^32 while the product stays
 * exact below 2^53 (up to 2^21 slots); beyond that, the remainder.
 */
export function scaled(hash: number, slots: number): number {
  const unsigned = hash >>> 0;
  return slots <= 0x20_0000 ? Math.floor((unsigned * slots) / 4_294_967_296) : unsigned % slots;
}

/** MurmurHash3's finalizer over the id and the seed: ids are given in order, the hash spreads them. */
function hashOf(id: number): number {
  let hash = id ^ SEED;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}
