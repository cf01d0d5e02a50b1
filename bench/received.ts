/**
 * What a live run of the pipeline benchmark keeps of its measured events, in arrays allocated once
 * for the whole run. They were a Map and growing arrays (three million entries each in a ten-minute
 * run), whose growth and collection were the likely cause of the seconds the benchmark's process
 * paused, its sending and its reading, in two ten-minute runs.
 */

/** The measured events' transaction ids: this prefix and the event's number in the measured sending. */
export const MEASURED_ID = 't';

/** A measured event's id as the ingest gives it (its source, then the raw id), up to its number. */
const MEASURED_PREFIX = `transactions:${MEASURED_ID}`;

/** A measured event's number, from its prediction's `sluice.event_id` header (-1 for any other). */
export function measuredIndex(eventId: string | undefined): number {
  if (eventId === undefined || !eventId.startsWith(MEASURED_PREFIX)) return -1;
  const digits = eventId.slice(MEASURED_PREFIX.length);
  const index = Number(digits);
  return Number.isSafeInteger(index) && String(index) === digits ? index : -1;
}

/**
 * A live run's measured events, in arrays of a fixed size: each one's send time (by its number),
 * and of the predictions received, the second (since the measured sending began) each event was
 * sent, its latency, and the time from its send to its prediction's record timestamp. Beyond the
 * capacity (a duplicate prediction would take a place) nothing more is kept; the received count,
 * kept apart, still shows it.
 */
export class Received {
  /** `performance.now()` when each measured event was sent, by its number; NaN until then. */
  private readonly sentAt: Float64Array;
  readonly seconds: Float64Array;
  readonly latencies: Float64Array;
  readonly toProduce: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.sentAt = new Float64Array(capacity).fill(Number.NaN);
    this.seconds = new Float64Array(capacity);
    this.latencies = new Float64Array(capacity);
    this.toProduce = new Float64Array(capacity);
  }

  /** Measured event number `index` was sent at `at` (`performance.now()`); beyond the capacity, not kept. */
  sent(index: number, at: number): void {
    if (index >= 0 && index < this.sentAt.length) this.sentAt[index] = at;
  }

  /** When the measured event of a prediction's `sluice.event_id` was sent; NaN for any other event, or one not sent. */
  sentTimeOf(eventId: string | undefined): number {
    const index = measuredIndex(eventId);
    return index >= 0 && index < this.sentAt.length ? (this.sentAt[index] as number) : Number.NaN;
  }

  add(second: number, latency: number, toProduce: number): void {
    if (this.length === this.latencies.length) return;
    this.seconds[this.length] = second;
    this.latencies[this.length] = latency;
    this.toProduce[this.length] = toProduce;
    this.length++;
  }

  /** The latencies kept, sorted (a copy). */
  sortedLatencies(): Float64Array {
    return this.latencies.slice(0, this.length).sort();
  }
}
