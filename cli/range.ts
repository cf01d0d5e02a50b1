import { ConfigError } from '../common/errors.js';
import type { EventRange } from '../jobs/range.js';

/** The range options of `backfill`, `features check` and `train` (see EventRange). */
export interface RangeOptions {
  readonly from?: string;
  readonly to?: string;
  /** Read --from/--to as Kafka record time instead of event time. */
  readonly recordTime?: boolean;
  readonly fromOffsets?: string;
  readonly toOffsets?: string;
}

/** A point in time on the command line: epoch milliseconds, or an ISO date or time (2001-01-10, 2001-01-10T12:00:00Z). */
export function parseTime(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const time = /^-?\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(time)) throw new ConfigError(`${flag} takes epoch milliseconds or an ISO time, got "${text}"`);
  return time;
}

function parseOffsets(text: string | undefined, flag: string): Record<number, string> | undefined {
  if (text === undefined) return undefined;
  const offsets: Record<number, string> = {};
  for (const part of text.split(',')) {
    const match = /^(\d+):(\d+)$/.exec(part.trim());
    if (!match?.[1] || !match[2]) throw new ConfigError(`${flag} takes partition:offset pairs such as 0:100,1:250, got "${text}"`);
    offsets[Number(match[1])] = match[2];
  }
  return offsets;
}

/** The range the options describe: --from/--to in event time unless --record-time; offsets always in Kafka's terms. */
export function rangeOf(options: RangeOptions): EventRange {
  const from = parseTime(options.from, '--from');
  const to = parseTime(options.to, '--to');
  if (from !== undefined && to !== undefined && to <= from)
    throw new ConfigError(`--to (${options.to ?? ''}) must come after --from (${options.from ?? ''})`);
  const fromOffsets = parseOffsets(options.fromOffsets, '--from-offsets');
  const toOffsets = parseOffsets(options.toOffsets, '--to-offsets');
  const times = { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
  const record = {
    ...(options.recordTime && from !== undefined ? { fromTime: from } : {}),
    ...(options.recordTime && to !== undefined ? { toTime: to } : {}),
    ...(fromOffsets ? { fromOffsets } : {}),
    ...(toOffsets ? { toOffsets } : {}),
  };
  return {
    ...(!options.recordTime && Object.keys(times).length > 0 ? { eventTime: times } : {}),
    ...(Object.keys(record).length > 0 ? { record } : {}),
  };
}
