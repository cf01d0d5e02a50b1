import { BinaryReader } from '../../monitoring/codec.js';
import type { FeatureRow } from '../../topology/features.js';
import type { Serde } from '../../state/index.js';
import { compactNumber, sharedString } from './compact-values.js';
import type { HistoryEvent } from './engine.js';
import type { EntityHead, HistorySegment, StoredEntity } from './entity-history.js';

/**
 * The stored form of the features store's values (RocksDB values and changelog records): an
 * entity's head, or one segment of its history (entity-history.ts). Binary, because JSON spent
 * most of its time turning doubles into text and back. A tag byte, then
 *
 *   head (2):    newest: number-or-null, nextSegment: f64, trim: f64, u32 count, then each
 *                segment id as f64, then the latest rows
 *   segment (3): fields: u32 count, then each name as a string;
 *                events: u32 count, then each as t: f64, seq: f64, newest: number-or-null, then
 *                one value per field
 *
 * where the latest rows are u32 count, then each as name, view, version: f64, entity, eventId,
 * eventTime: f64, sequence: f64, windowStart: f64, windowEnd: f64, u32 count, then (name,
 * number-or-null); a string is u32 byte length then UTF-8, number-or-null is a tag byte (0 null,
 * 1 number) then an f64 for numbers, and a value is a tag byte (0 null, 1 number + f64, 2 string).
 * Numbers keep every bit (NaN and -0 included, which JSON did not). Little-endian throughout.
 *
 * Whole states written by earlier versions are still read, as heads whose history is inline (the
 * stage splits it into segments at the entity's next event): tag 1 (newest, then the fields and
 * events as in a segment, then the latest rows), and JSON (it starts with `{`).
 */
export function entityStoreSerde(): Serde<StoredEntity> {
  return {
    serialize: (value) => (value.kind === 'head' ? encodeHead(value) : encodeSegment(value)),
    deserialize(bytes) {
      if (bytes[0] === JSON_START) return fromJson(bytes);
      const tag = bytes[0];
      if (tag !== WHOLE_STATE && tag !== HEAD && tag !== SEGMENT)
        throw new EntityStateFormatError(`unknown entity state format ${String(tag)}`);
      return decode(bytes, tag);
    },
  };
}

export class EntityStateFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EntityStateFormatError';
  }
}

const WHOLE_STATE = 1;
const HEAD = 2;
const SEGMENT = 3;
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
  // ASCII (ids, names) byte by byte: Buffer.write costs a call into C++ of about 3 times as long
  // for the short strings stored here. Anything else as UTF-8 by Buffer.write, from the start.
  const { length } = value;
  let ascii = true;
  for (let index = 0; index < length; index++) {
    const code = value.charCodeAt(index);
    if (code >= 0x80) {
      ascii = false;
      break;
    }
    scratch[at + 4 + index] = code;
  }
  const bytes = ascii ? length : scratch.write(value, at + 4, 'utf8');
  scratch.writeUInt32LE(bytes, at);
  at += 4 + bytes;
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

function encodeHead(head: EntityHead): Buffer {
  at = 0;
  room(1);
  scratch[at++] = HEAD;
  writeNumberOrNull(head.newest);
  writeF64(head.nextSegment);
  writeF64(head.trim);
  writeU32(head.segments.length);
  for (const id of head.segments) writeF64(id);
  writeLatest(head.latest);
  return copyOut();
}

function encodeSegment(segment: HistorySegment): Buffer {
  at = 0;
  room(1);
  scratch[at++] = SEGMENT;
  writeEvents(segment.events);
  return copyOut();
}

function copyOut(): Buffer {
  const bytes = Buffer.allocUnsafe(at);
  scratch.copy(bytes, 0, 0, at);
  return bytes;
}

function writeEvents(events: readonly HistoryEvent[]): void {
  // Every event of an entity carries the same fields (the views' fields); collect them anyway.
  const fields: string[] = [];
  const known = new Set<string>();
  for (const event of events)
    for (const field in event.v)
      if (!known.has(field)) {
        known.add(field);
        fields.push(field);
      }
  writeU32(fields.length);
  for (const field of fields) writeString(field);
  writeU32(events.length);
  for (const event of events) {
    writeF64(event.t);
    writeF64(event.seq);
    writeNumberOrNull(event.newest);
    for (const field of fields) writeValue(event.v[field]);
  }
}

function writeLatest(latest: Readonly<Record<string, FeatureRow>>): void {
  const views = Object.keys(latest);
  writeU32(views.length);
  for (const name of views) {
    const row = latest[name] as FeatureRow;
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
  if (tag === STRING) return sharedString(reader.string());
  throw new EntityStateFormatError(`bad value tag ${tag}`);
}

function decode(bytes: Buffer, tag: number): StoredEntity {
  try {
    const reader = new BinaryReader(bytes);
    reader.u8(); // the tag, checked by deserialize
    const value = tag === SEGMENT ? readSegment(reader) : tag === HEAD ? readHead(reader) : readWholeState(reader);
    if (!reader.done) throw new EntityStateFormatError('bytes after the entity state');
    return value;
  } catch (error) {
    // monitoring/codec's reader throws RangeError on truncated input.
    if (error instanceof RangeError) throw new EntityStateFormatError(`entity state ${error.message}`);
    throw error;
  }
}

function readHead(reader: BinaryReader): EntityHead {
  const newest = numberOrNull(reader);
  const nextSegment = reader.f64();
  const trim = reader.f64();
  const segments: number[] = [];
  for (let count = reader.u32(); count > 0; count--) segments.push(reader.f64());
  return { kind: 'head', newest, latest: readLatest(reader), segments, nextSegment, trim };
}

function readSegment(reader: BinaryReader): HistorySegment {
  return { kind: 'segment', events: readEvents(reader) };
}

/** A whole state of an earlier version: a head with its history inline. */
function readWholeState(reader: BinaryReader): EntityHead {
  const newest = numberOrNull(reader);
  const inline = readEvents(reader);
  return { kind: 'head', newest, latest: readLatest(reader), segments: [], nextSegment: 0, trim: 0, inline };
}

function readEvents(reader: BinaryReader): HistoryEvent[] {
  const fields: string[] = [];
  for (let count = reader.u32(); count > 0; count--) fields.push(reader.string());
  const events: HistoryEvent[] = [];
  for (let count = reader.u32(); count > 0; count--) {
    const t = reader.f64();
    const seq = compactNumber(reader.f64());
    const eventNewest = numberOrNull(reader);
    const v: Record<string, number | string | null> = {};
    for (const field of fields) v[field] = value(reader);
    events.push({ t, seq, newest: eventNewest, v });
  }
  return events;
}

function readLatest(reader: BinaryReader): Record<string, FeatureRow> {
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
  return latest;
}

// ---- the JSON form of earlier versions --------------------------------------------------------

interface JsonEntityState {
  readonly n: number | null;
  readonly f: readonly string[];
  /** Events as [time, sequence, newest-at-arrival, ...values in field order]. */
  readonly e: readonly (readonly (number | string | null)[])[];
  readonly l: Record<string, FeatureRow>;
}

function fromJson(bytes: Buffer): EntityHead {
  const stored = JSON.parse(bytes.toString('utf8')) as JsonEntityState;
  const entries: unknown = stored.e;
  if (!Array.isArray(entries) || !Array.isArray(stored.f)) throw new EntityStateFormatError('not a stored entity state');
  return {
    kind: 'head',
    newest: stored.n,
    segments: [],
    nextSegment: 0,
    trim: 0,
    inline: (entries as JsonEntityState['e']).map((entry) => ({
      t: Number(entry[0]),
      seq: Number(entry[1]),
      newest: entry[2] === null ? null : Number(entry[2]),
      v: Object.fromEntries(stored.f.map((field, index) => [field, entry[index + 3] ?? null])),
    })),
    latest: stored.l,
  };
}
