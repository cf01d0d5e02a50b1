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
    this.see(partition, eventTime);
    return this.watermark();
  }

  /** Records an event time seen on a partition (per record: without the combined watermark). */
  see(partition: string, eventTime: number): void {
    const previous = this.maxEventTime.get(partition);
    if (previous === undefined || eventTime > previous) this.maxEventTime.set(partition, eventTime);
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
