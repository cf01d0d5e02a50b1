/**
 * Event-time progress. A partition's watermark is the largest event time it has seen minus the
 * allowed lateness: "no record older than this is still expected". A consumer of several
 * partitions can only be as far as its slowest partition, so the combined watermark is the
 * minimum over partitions that have seen data (an idle partition does not hold others back
 * until it has produced something).
 */
export class WatermarkTracker {
  private readonly maxEventTime = new Map<string, number>();

  constructor(readonly allowedLatenessMs: number) {}

  /** Records an event time seen on a partition; returns the combined watermark after it. */
  observe(partition: string, eventTime: number): number {
    const previous = this.maxEventTime.get(partition);
    if (previous === undefined || eventTime > previous) this.maxEventTime.set(partition, eventTime);
    return this.watermark();
  }

  /** The watermark of one partition (−∞ before it has seen anything). */
  partitionWatermark(partition: string): number {
    const max = this.maxEventTime.get(partition);
    return max === undefined ? Number.NEGATIVE_INFINITY : max - this.allowedLatenessMs;
  }

  /** The minimum over partitions' watermarks (−∞ before any data). */
  watermark(): number {
    if (this.maxEventTime.size === 0) return Number.NEGATIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    for (const max of this.maxEventTime.values()) min = Math.min(min, max - this.allowedLatenessMs);
    return min;
  }

  /** Forgets a partition that moved to another instance. */
  remove(partition: string): void {
    this.maxEventTime.delete(partition);
  }
}

/** Parses durations such as `500ms`, `30s`, `15m`, `1h`, `7d` (or a number of milliseconds). */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`invalid duration ${value}`);
    return value;
  }
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(value.trim());
  if (!match) throw new Error(`invalid duration "${value}": use a number and ms, s, m, h, d or w`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Math.round(Number(match[1]) * unit);
}
