import { randomBytes } from 'node:crypto';

/**
 * How many times each string occurs, in about 0.6 times the memory of a `Map<string, number>`:
 * open addressing with linear probing, the keys in one array and the counts in an `Int32Array` (12
 * bytes a slot), at most 3/4 full, growing by half and shrinking below 1/4 full: 16–24 bytes an
 * entry while it grows, against 28–56 for a Map (28 bytes a slot, grown by doubling when full).
 * Every kept window of a distinct count holds one per field, for as long as its entity is active;
 * in the memory run (`npm run bench -- pipeline --rss`) they were the state that grew most.
 *
 * Keys compare with `===`, so counts are exact whatever the hash does; the hash only places them.
 * It is seeded per process, so which strings share a slot cannot be chosen from outside.
 *
 * A value is held as the engine's shared copy of the string (`shared`), not as the copy decoded
 * from the event that brought it: the day windows of 5,000 cards after 600 events each (about 400
 * distinct merchant ids a card, as in the memory run's tenth minute) took 31.7 MiB of heap so,
 * against 77.7 MiB with each event's own string.
 */
export class ValueCounts {
  private keys: (string | undefined)[] = [];
  private counts = new Int32Array(0);
  private slots = 0;
  private used = 0;
  /** This table's share of `heldTables`, once it outgrew MIN_SLOTS. */
  private held: HeldShare | undefined;

  constructor() {
    this.allocate(MIN_SLOTS);
  }

  /** Distinct values held. */
  get size(): number {
    return this.used;
  }

  /** Slots allocated (at most 3/4 of them are used; below 1/4 the table shrinks). */
  get capacity(): number {
    return this.slots;
  }

  /** The bytes of its slots (SLOT_BYTES each; the values' strings are shared, not counted). */
  get heldBytes(): number {
    return this.slots * SLOT_BYTES;
  }

  /** One more occurrence of `value`. */
  add(value: string): void {
    const slot = this.slotOf(value);
    if (this.keys[slot] === value) {
      const count = this.counts[slot] as number;
      if (count === MAX_COUNT) throw new RangeError(`ValueCounts holds a value ${MAX_COUNT} times, the most an Int32Array counts`);
      this.counts[slot] = count + 1;
      return;
    }
    const held = shared(value);
    if ((this.used + 1) * 4 > this.slots * 3) {
      this.resize(Math.ceil(this.slots * 1.5));
      this.place(held, 1);
    } else {
      this.keys[slot] = held;
      this.counts[slot] = 1;
    }
    this.used++;
  }

  /** One occurrence of `value` fewer: at none, the value is no longer held (a value not held is left alone). */
  remove(value: string): void {
    const slot = this.slotOf(value);
    if (this.keys[slot] !== value) return;
    const count = this.counts[slot] as number;
    if (count > 1) {
      this.counts[slot] = count - 1;
      return;
    }
    this.vacate(slot);
    this.used--;
    if (this.slots > MIN_SLOTS && this.used * 4 < this.slots) this.resize(Math.max(MIN_SLOTS, Math.ceil((this.slots * 2) / 3)));
  }

  /** The occurrences of `value` (0 if not held). */
  countOf(value: string): number {
    const slot = this.slotOf(value);
    return this.keys[slot] === value ? (this.counts[slot] as number) : 0;
  }

  /** The slot holding `value`, or the empty slot where it would go. */
  private slotOf(value: string): number {
    const { keys, slots } = this;
    let slot = homeOf(value, slots);
    for (;;) {
      const key = keys[slot];
      if (key === undefined || key === value) return slot;
      slot = slot + 1 === slots ? 0 : slot + 1;
    }
  }

  /**
   * Empties a slot, moving later keys of its run back into the gap when their home slot allows
   * (backward-shift deletion: no tombstones, so probes stay short).
   */
  private vacate(slot: number): void {
    const { keys, counts, slots } = this;
    /** How far `to` is after `from`, going round. */
    const after = (from: number, to: number): number => (to >= from ? to - from : to + slots - from);
    let hole = slot;
    let next = hole + 1 === slots ? 0 : hole + 1;
    for (let key = keys[next]; key !== undefined; key = keys[next]) {
      // The key may move into the hole if the hole is on its probe path (home … next).
      if (after(homeOf(key, slots), next) >= after(hole, next)) {
        keys[hole] = key;
        counts[hole] = counts[next] as number;
        hole = next;
      }
      next = next + 1 === slots ? 0 : next + 1;
    }
    keys[hole] = undefined;
    counts[hole] = 0;
  }

  private resize(slots: number): void {
    const { keys, counts } = this;
    this.allocate(slots);
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index];
      if (key !== undefined) this.place(key, counts[index] as number);
    }
  }

  /** Puts a key known to be absent. */
  private place(key: string, count: number): void {
    const slot = this.slotOf(key);
    this.keys[slot] = key;
    this.counts[slot] = count;
  }

  private allocate(slots: number): void {
    this.keys = new Array<string | undefined>(slots).fill(undefined);
    this.counts = new Int32Array(slots);
    this.slots = slots;
    if (slots > MIN_SLOTS && !this.held) {
      this.held = { slots: 0 };
      heldTables.tables++;
      collected.register(this, this.held);
    }
    if (this.held) {
      heldTables.slots += slots - this.held.slots;
      this.held.slots = slots;
    }
  }
}

/** A table's slots as counted in `heldTables` (kept apart from the table, which it must not keep alive). */
interface HeldShare {
  slots: number;
}

/**
 * The tables that outgrew their first MIN_SLOTS slots, and their slots, until the collector has
 * freed them: the distinct-count state held in memory (`distinctTablesMemory`). A table starts
 * being counted at its first growth, so the many small tables that never grow cost no
 * registration (each of them holds MIN_SLOTS slots).
 */
const heldTables = { tables: 0, slots: 0 };
const collected = new FinalizationRegistry<HeldShare>((share) => {
  heldTables.tables--;
  heldTables.slots -= share.slots;
});

/** The bytes one slot takes: a key's reference in the keys array (8) and its Int32 count (4). */
export const SLOT_BYTES = 12;

/**
 * The distinct-count tables (ValueCounts) that outgrew MIN_SLOTS slots and are not yet collected:
 * how many, and the bytes of their slots (SLOT_BYTES each: a key's 8 in the keys array on V8's
 * heap, a count's 4 in the Int32Array, which V8 keeps outside its heap beyond 64 bytes; the
 * values' strings are the engine's shared copies, not counted). A table dropped but not yet
 * collected still counts: it still takes memory.
 */
export function distinctTablesMemory(): { readonly tables: number; readonly bytes: number } {
  return { tables: heldTables.tables, bytes: heldTables.slots * SLOT_BYTES };
}

/**
 * The engine's one copy of a string's content (V8 internalizes the keys of objects): every table
 * that holds a value then shares one string. The engine's table of such strings holds them
 * weakly, so one that no table holds any more is collected (a field of ever new values, such as
 * session ids, does not leak). A key that is an array index comes back as a new string (the
 * engine keeps such keys as numbers), and a long value as it is: equal, only not shared.
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

const MIN_SLOTS = 8;
const MAX_COUNT = 0x7fff_ffff;

/** This process's hash seed. */
const SEED = randomBytes(4).readUInt32LE(0);

/** The slot a value's probe starts at: its hash, scaled to the table. */
function homeOf(value: string, slots: number): number {
  return scaled(hashOf(value), slots);
}

/**
 * A 32-bit hash scaled to [0, slots): multiplied and divided by 2^32 while the product stays
 * exact below 2^53 (up to 2^21 slots); beyond that, the remainder.
 */
export function scaled(hash: number, slots: number): number {
  const unsigned = hash >>> 0;
  return slots <= 0x20_0000 ? Math.floor((unsigned * slots) / 4_294_967_296) : unsigned % slots;
}

/** FNV-1a over the UTF-16 code units from a seed, then MurmurHash3's finalizer to spread the bits. */
function hashOf(value: string): number {
  let hash = SEED;
  for (let index = 0; index < value.length; index++) hash = Math.imul(hash ^ value.charCodeAt(index), 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}
