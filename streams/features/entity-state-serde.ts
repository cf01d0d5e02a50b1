import { BinaryReader } from '../../monitoring/codec.js';
import type { FeatureRow } from '../../topology/features.js';
import type { Serde } from '../../state/index.js';
import type { EntityState, HistoryEvent } from './engine.js';

/**
 * The stored form of an entity's state (RocksDB values and changelog records), written at every
 * commit for each entity the commit changed. Binary, because JSON spent most of its time turning
 * doubles into text and back: one version byte, then
 *
 *   newest: number-or-null
 *   fields: u32 count, then each name as a string
 *   events: u32 count, then each as t: f64, seq: f64, newest: number-or-null, then one value per field
 *   latest: u32 count, then each row as view, version: f64, entity, eventId, eventTime: f64,
 *           sequence: f64, windowStart: f64, windowEnd: f64, u32 count, then (name, number-or-null)
 *
 * where a string is u32 byte length then UTF-8, number-or-null is a tag byte (0 null, 1 number)
 * then an f64 for numbers, and a value is a tag byte (0 null, 1 number + f64, 2 string). Numbers
 * keep every bit (NaN and -0 included, which JSON did not). Little-endian throughout.
 *
 * States written as JSON by earlier versions (they start with `{`) are still read.
 */
export function entityStateSerde(): Serde<EntityState> {
  return {
    serialize: encodeEntityState,
    deserialize(bytes) {
      if (bytes[0] === JSON_START) return fromJson(bytes);
      if (bytes[0] !== VERSION) throw new EntityStateFormatError(`unknown entity state format ${String(bytes[0])}`);
      return decodeEntityState(bytes);
    },
  };
}

export class EntityStateFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EntityStateFormatError';
  }
}

const VERSION = 1;
const JSON_START = 0x7b;
const NULL = 0;
const NUMBER = 1;
const STRING = 2;

// ---- writing ---------------------------------------------------------------------------------

/** One scratch buffer for every state written (single-threaded); grown on demand, then copied out. */
let scratch = Buffer.allocUnsafe(64 * 1024);
let at = 0;

function room(bytes: number): void {
  if (at + bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(2 * scratch.length, at + bytes));
  scratch.copy(grown, 0, 0, at);
  scratch = grown;
}

function writeU32(value: number): void {
  room(4);
  at = scratch.writeUInt32LE(value, at);
}

function writeF64(value: number): void {
  room(8);
  at = scratch.writeDoubleLE(value, at);
}

function writeString(value: string): void {
  // At most 3 bytes per UTF-16 unit.
  room(4 + 3 * value.length);
  const length = scratch.write(value, at + 4, 'utf8');
  scratch.writeUInt32LE(length, at);
  at += 4 + length;
}

function writeNumberOrNull(value: number | null | undefined): void {
  room(1);
  if (typeof value === 'number') {
    scratch[at++] = NUMBER;
    writeF64(value);
  } else {
    scratch[at++] = NULL;
  }
}

function writeValue(value: number | string | null | undefined): void {
  if (typeof value === 'string') {
    room(1);
    scratch[at++] = STRING;
    writeString(value);
  } else {
    writeNumberOrNull(value);
  }
}

function encodeEntityState(state: EntityState): Buffer {
  at = 0;
  room(1);
  scratch[at++] = VERSION;
  writeNumberOrNull(state.newest);
  // Every event of an entity carries the same fields (the views' fields); collect them anyway.
  const fields: string[] = [];
  const known = new Set<string>();
  for (const event of state.events)
    for (const field in event.v)
      if (!known.has(field)) {
        known.add(field);
        fields.push(field);
      }
  writeU32(fields.length);
  for (const field of fields) writeString(field);
  writeU32(state.events.length);
  for (const event of state.events) {
    writeF64(event.t);
    writeF64(event.seq);
    writeNumberOrNull(event.newest);
    for (const field of fields) writeValue(event.v[field]);
  }
  const views = Object.keys(state.latest);
  writeU32(views.length);
  for (const name of views) {
    const row = state.latest[name] as FeatureRow;
    writeString(name);
    writeString(row.view);
    writeF64(row.version);
    writeString(row.entity);
    writeString(row.eventId);
    writeF64(row.eventTime);
    writeF64(row.sequence);
    writeF64(row.windowStart);
    writeF64(row.windowEnd);
    const names = Object.keys(row.values);
    writeU32(names.length);
    for (const feature of names) {
      writeString(feature);
      writeNumberOrNull(row.values[feature]);
    }
  }
  const bytes = Buffer.allocUnsafe(at);
  scratch.copy(bytes, 0, 0, at);
  return bytes;
}

// ---- reading ---------------------------------------------------------------------------------

function numberOrNull(reader: BinaryReader): number | null {
  const tag = reader.u8();
  if (tag === NULL) return null;
  if (tag === NUMBER) return reader.f64();
  throw new EntityStateFormatError(`bad number tag ${tag}`);
}

function value(reader: BinaryReader): number | string | null {
  const tag = reader.u8();
  if (tag === NULL) return null;
  if (tag === NUMBER) return reader.f64();
  if (tag === STRING) return reader.string();
  throw new EntityStateFormatError(`bad value tag ${tag}`);
}

function decodeEntityState(bytes: Buffer): EntityState {
  try {
    return readEntityState(new BinaryReader(bytes));
  } catch (error) {
    // monitoring/codec's reader throws RangeError on truncated input.
    if (error instanceof RangeError) throw new EntityStateFormatError(`entity state ${error.message}`);
    throw error;
  }
}

function readEntityState(reader: BinaryReader): EntityState {
  reader.u8(); // the version byte, checked by deserialize
  const newest = numberOrNull(reader);
  const fields: string[] = [];
  for (let count = reader.u32(); count > 0; count--) fields.push(reader.string());
  const events: HistoryEvent[] = [];
  for (let count = reader.u32(); count > 0; count--) {
    const t = reader.f64();
    const seq = reader.f64();
    const eventNewest = numberOrNull(reader);
    const v: Record<string, number | string | null> = {};
    for (const field of fields) v[field] = value(reader);
    events.push({ t, seq, newest: eventNewest, v });
  }
  const latest: Record<string, FeatureRow> = {};
  for (let count = reader.u32(); count > 0; count--) {
    const name = reader.string();
    const view = reader.string();
    const version = reader.f64();
    const entity = reader.string();
    const eventId = reader.string();
    const eventTime = reader.f64();
    const sequence = reader.f64();
    const windowStart = reader.f64();
    const windowEnd = reader.f64();
    const values: Record<string, number | null> = {};
    for (let features = reader.u32(); features > 0; features--) {
      const feature = reader.string();
      values[feature] = numberOrNull(reader);
    }
    latest[name] = { view, version, entity, eventId, eventTime, sequence, windowStart, windowEnd, values };
  }
  if (!reader.done) throw new EntityStateFormatError('bytes after the entity state');
  return { newest, events, latest };
}

// ---- the JSON form of earlier versions --------------------------------------------------------

interface JsonEntityState {
  readonly n: number | null;
  readonly f: readonly string[];
  /** Events as [time, sequence, newest-at-arrival, ...values in field order]. */
  readonly e: readonly (readonly (number | string | null)[])[];
  readonly l: Record<string, FeatureRow>;
}

function fromJson(bytes: Buffer): EntityState {
  const stored = JSON.parse(bytes.toString('utf8')) as JsonEntityState;
  const entries: unknown = stored.e;
  if (!Array.isArray(entries) || !Array.isArray(stored.f)) throw new EntityStateFormatError('not a stored entity state');
  return {
    newest: stored.n,
    events: (entries as JsonEntityState['e']).map((entry) => ({
      t: Number(entry[0]),
      seq: Number(entry[1]),
      newest: entry[2] === null ? null : Number(entry[2]),
      v: Object.fromEntries(stored.f.map((field, index) => [field, entry[index + 3] ?? null])),
    })),
    latest: stored.l,
  };
}
