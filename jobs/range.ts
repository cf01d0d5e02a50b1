import type { Kafka } from 'kafkajs';
import { SluiceError } from '../common/errors.js';
import { resolveRanges, type PartitionRange, type RangeBounds } from '../kafka/topic-range.js';

/**
 * Which events a job (backfill, consistency check, training) is about.
 *
 * By default a range is in **event time**: `[from, to)` on the events' `event_time`, which is what a
 * user means by "January 10th" — also for history produced today, whose Kafka record times are all
 * today. Kafka has no index on event time and event times are not ordered by offset, so an event-time
 * range reads every partition of events.<source> from its start.
 *
 * On request (`--record-time`, `--from-offsets`) the range is in Kafka's terms instead: record time
 * (when ingest wrote the event) or offsets of events.<source>.
 *
 * Either way the entities' history before the range is read too (from each partition's start), so
 * the first rows of the range are computed over the same windows the live stage had; rows are only
 * emitted, and compared, for the events in the range.
 */
export interface EventRange {
  /** Event-time bounds, epoch ms: `from` inclusive, `to` exclusive. */
  readonly eventTime?: { readonly from?: number; readonly to?: number };
  /** Kafka record-time or offset bounds on events.<source>. */
  readonly record?: RangeBounds;
}

export interface RangePlan {
  /** What to read, per partition: from its start (the history a warm-up needs) to the end of the range. */
  readonly read: readonly PartitionRange[];
  /** Whether an event of the topic belongs to the range. */
  selects(partition: number, offset: bigint, eventTime: number): boolean;
  /** Event times before this are outside the range whatever their offset (−∞ when unbounded). */
  readonly fromEventTime: number;
}

/** Resolves a range on one events topic (offsets at the moment the job starts). */
export async function planRange(kafka: Kafka, topic: string, range: EventRange = {}): Promise<RangePlan> {
  const whole = await resolveRanges(kafka, topic);
  const record = hasRecordBounds(range) && range.record ? await resolveRanges(kafka, topic, range.record) : undefined;
  return rangePlan(whole, record, range.eventTime);
}

/** Offsets read before (a training run's manifest) that the topic no longer holds. */
export class DatasetGoneError extends SluiceError {}

/** Offsets a job reads, per topic, fixed beforehand: a rebuild reads exactly what a run read. */
export type PinnedRanges = Readonly<Record<string, readonly PartitionRange[]>>;

/**
 * A plan over offsets fixed beforehand (`read` = `pinned`), the selection as planRange makes it;
 * record bounds must be offsets here (a manifest stores them resolved). Fails when the topic no
 * longer holds every pinned record (retention deleted some, or the topic was recreated).
 */
export async function pinnedPlan(
  kafka: Kafka,
  topic: string,
  pinned: readonly PartitionRange[],
  range: EventRange = {},
): Promise<RangePlan> {
  await checkRetained(kafka, topic, pinned);
  let record: PartitionRange[] | undefined;
  const bounds = range.record;
  if (bounds && hasRecordBounds(range)) {
    if (bounds.fromTime !== undefined || bounds.toTime !== undefined)
      throw new RangeError('a pinned plan takes record bounds as offsets (resolve the times first)');
    const clamp = (value: bigint, entry: PartitionRange): bigint => (value < entry.from ? entry.from : value > entry.to ? entry.to : value);
    record = pinned.map((entry) => {
      const from = bounds.fromOffsets?.[entry.partition];
      const to = bounds.toOffsets?.[entry.partition];
      return {
        partition: entry.partition,
        from: clamp(from === undefined ? entry.from : BigInt(from), entry),
        to: clamp(to === undefined ? entry.to : BigInt(to), entry),
      };
    });
  }
  return rangePlan(pinned, record, range.eventTime);
}

/** Throws DatasetGoneError unless every pinned offset range is still in the topic. */
export async function checkRetained(kafka: Kafka, topic: string, pinned: readonly PartitionRange[]): Promise<void> {
  let now: PartitionRange[];
  try {
    now = await resolveRanges(kafka, topic);
  } catch (error) {
    throw new DatasetGoneError('SLUICE_DATASET_GONE', `cannot read ${topic} to rebuild the dataset: ${(error as Error).message}`, {
      cause: error,
    });
  }
  for (const entry of pinned) {
    if (entry.to <= entry.from) continue;
    const current = now.find((candidate) => candidate.partition === entry.partition);
    if (!current || current.from > entry.from || current.to < entry.to)
      throw new DatasetGoneError(
        'SLUICE_DATASET_GONE',
        `${topic} partition ${entry.partition} no longer holds offsets [${entry.from}, ${entry.to}) (it holds [${current?.from ?? '-'}, ${current?.to ?? '-'})): retention deleted records the run read, so its dataset cannot be rebuilt`,
      );
  }
}

/** Record-time or offset bounds resolved to offsets (what a manifest stores), event-time bounds as they are. */
export async function resolveToOffsets(
  kafka: Kafka,
  topic: string,
  range: EventRange = {},
): Promise<{ range: EventRange; offsets: PartitionRange[] }> {
  if (!hasRecordBounds(range) || !range.record) return { range, offsets: [] };
  const offsets = await resolveRanges(kafka, topic, range.record);
  return {
    range: {
      ...(range.eventTime ? { eventTime: range.eventTime } : {}),
      record: {
        fromOffsets: Object.fromEntries(offsets.map((entry) => [entry.partition, entry.from.toString()])),
        toOffsets: Object.fromEntries(offsets.map((entry) => [entry.partition, entry.to.toString()])),
      },
    },
    offsets,
  };
}

/** The plan from resolved offsets: `whole` each partition's [start, end), `record` the record-time/offset bounds. */
export function rangePlan(
  whole: readonly PartitionRange[],
  record: readonly PartitionRange[] | undefined,
  eventTime: EventRange['eventTime'],
): RangePlan {
  const bounds = new Map(record?.map((entry) => [entry.partition, entry]));
  const from = eventTime?.from ?? Number.NEGATIVE_INFINITY;
  const to = eventTime?.to ?? Number.POSITIVE_INFINITY;
  return {
    read: whole.map((entry) => ({ partition: entry.partition, from: entry.from, to: bounds.get(entry.partition)?.to ?? entry.to })),
    selects(partition, offset, time) {
      if (time < from || time >= to) return false;
      if (!record) return true;
      const inside = bounds.get(partition);
      return inside !== undefined && offset >= inside.from && offset < inside.to;
    },
    fromEventTime: from,
  };
}

/** Whether the range bounds record time or offsets (rather than only event time, or nothing). */
export function hasRecordBounds(range: EventRange = {}): boolean {
  const bounds = range.record;
  return (
    bounds !== undefined &&
    (bounds.fromTime !== undefined || bounds.toTime !== undefined || bounds.fromOffsets !== undefined || bounds.toOffsets !== undefined)
  );
}

/** One line for reports: what the range is. */
export function describeRange(range: EventRange = {}): string {
  const iso = (time: number | undefined): string => (time === undefined ? '…' : new Date(time).toISOString());
  const parts: string[] = [];
  if (range.eventTime && (range.eventTime.from !== undefined || range.eventTime.to !== undefined))
    parts.push(`event time [${iso(range.eventTime.from)}, ${iso(range.eventTime.to)})`);
  const record = range.record;
  if (record && (record.fromTime !== undefined || record.toTime !== undefined))
    parts.push(`record time [${iso(record.fromTime)}, ${iso(record.toTime)})`);
  if (record && (record.fromOffsets !== undefined || record.toOffsets !== undefined)) parts.push('offset bounds');
  return parts.length === 0 ? 'every event' : parts.join(', ');
}
