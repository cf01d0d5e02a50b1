import { closeTime, fixedWindowsFor, type Window, type WindowSpec } from './window.js';

/** How to fold values into a window's accumulator. `merge` is needed for session windows. */
export interface Aggregation<V, A> {
  init(): A;
  add(accumulator: A, value: V): A;
  merge?(left: A, right: A): A;
}

/**
 * What happens to a record that arrives after its window closed (watermark ≥ window end + grace):
 * `drop` counts and ignores it, `dead-letter` hands it back to be dead-lettered, `update` folds
 * it into the closed window (kept for `retentionMs` after closing) and re-emits the window.
 */
export type LatePolicy = 'drop' | 'dead-letter' | 'update';

export interface WindowResult<A> {
  readonly key: string;
  readonly window: Window;
  readonly value: A;
  /** True once the window has closed: this is its last result (unless a late update follows). */
  readonly final: boolean;
}

export interface AddOutcome<A> {
  /** Windows the record changed, with their new values. */
  readonly updates: WindowResult<A>[];
  /** Session windows merged into a larger one: no longer exist. */
  readonly removed: { readonly key: string; readonly window: Window }[];
  /** 'on-time', or what the late policy did with a late record. */
  readonly lateness: 'on-time' | 'dropped' | 'dead-letter' | 'updated';
}

export interface WindowedAggregatorOptions<V, A> {
  readonly window: WindowSpec;
  readonly aggregation: Aggregation<V, A>;
  readonly graceMs?: number;
  readonly latePolicy?: LatePolicy;
  /** How long closed windows are kept for late updates (policy `update`). */
  readonly retentionMs?: number;
}

interface StoredWindow<A> {
  window: Window;
  value: A;
  finalEmitted: boolean;
}

interface TimedValue<V> {
  readonly time: number;
  readonly value: V;
}

/**
 * Windowed aggregation over event time, per key, driven by a watermark the caller supplies.
 * Plain code (no Kafka): the stream runtime feeds it records and watermarks, and emits what it
 * returns. State is in memory here; the state stores make it durable.
 */
export class WindowedAggregator<V, A> {
  private readonly spec: WindowSpec;
  private readonly aggregation: Aggregation<V, A>;
  private readonly graceMs: number;
  private readonly latePolicy: LatePolicy;
  private readonly retentionMs: number;
  /** Fixed and session windows, per key, by start time. */
  private readonly windows = new Map<string, Map<number, StoredWindow<A>>>();
  /** Sliding windows keep the events themselves (sorted by time) and each event's window state. */
  private readonly events = new Map<string, TimedValue<V>[]>();
  private readonly slidingFinal = new Map<string, Set<number>>();
  /**
   * Fixed and session windows: no window closes or expires before this watermark (a lower bound,
   * never above the true one), so `advance` below it returns at once instead of visiting them all.
   */
  private nextDue = Number.POSITIVE_INFINITY;
  /** Keys that got a map of windows but may have stored none (a dropped late record): `advance` removes them if so. */
  private readonly maybeEmpty = new Set<string>();
  private lateCount = 0;

  constructor(options: WindowedAggregatorOptions<V, A>) {
    this.spec = options.window;
    this.aggregation = options.aggregation;
    this.graceMs = options.graceMs ?? 0;
    this.latePolicy = options.latePolicy ?? 'drop';
    this.retentionMs = options.retentionMs ?? 0;
    if (this.spec.kind === 'session' && !this.aggregation.merge) throw new Error('session windows need an aggregation with merge()');
  }

  /** Late records seen so far (whatever the policy did with them). */
  get lateRecords(): number {
    return this.lateCount;
  }

  add(key: string, time: number, value: V, watermark: number): AddOutcome<A> {
    switch (this.spec.kind) {
      case 'tumbling':
      case 'hopping':
        return this.addFixed(this.spec, key, time, value, watermark);
      case 'sliding':
        return this.addSliding(this.spec.sizeMs, key, time, value, watermark);
      case 'session':
        return this.addSession(this.spec.gapMs, key, time, value, watermark);
    }
  }

  /**
   * Closes every window whose close time the watermark has reached: returns their final
   * results (once each) and forgets windows past retention.
   */
  advance(watermark: number): WindowResult<A>[] {
    const finals: WindowResult<A>[] = [];
    if (this.spec.kind === 'sliding') {
      for (const [key, events] of this.events) {
        const finalSet = this.slidingFinal.get(key) ?? new Set<number>();
        for (const event of events) {
          if (finalSet.has(event.time) || closeTime(this.spec, this.slidingWindow(event.time), this.graceMs) > watermark) continue;
          finalSet.add(event.time);
          finals.push({ key, window: this.slidingWindow(event.time), value: this.slidingValue(key, event.time), final: true });
        }
        this.slidingFinal.set(key, finalSet);
        // An event can matter to no open or retained window once the newest window that could
        // contain it, (time, time + size], has closed and passed retention.
        const horizon = this.slidingSize() + this.graceMs + this.retentionMs;
        const keep = events.filter((event) => event.time + horizon > watermark);
        if (keep.length === 0) {
          this.events.delete(key);
          this.slidingFinal.delete(key);
        } else {
          this.events.set(key, keep);
          const kept = new Set(keep.map((event) => event.time));
          for (const time of finalSet) if (!kept.has(time)) finalSet.delete(time);
        }
      }
      return finals;
    }
    if (watermark < this.nextDue) {
      // What a scan would find: only keys that were given a map and got no window.
      for (const key of this.maybeEmpty) if (this.windows.get(key)?.size === 0) this.windows.delete(key);
      this.maybeEmpty.clear();
      return finals;
    }
    this.maybeEmpty.clear();
    let nextDue = Number.POSITIVE_INFINITY;
    for (const [key, byStart] of this.windows) {
      for (const [start, stored] of byStart) {
        const closesAt = closeTime(this.spec, stored.window, this.graceMs);
        if (!stored.finalEmitted && closesAt <= watermark) {
          stored.finalEmitted = true;
          finals.push({ key, window: stored.window, value: stored.value, final: true });
        }
        if (closesAt + this.keptAfterClose() <= watermark) byStart.delete(start);
        else nextDue = Math.min(nextDue, this.dueOf(stored, closesAt));
      }
      if (byStart.size === 0) this.windows.delete(key);
    }
    this.nextDue = nextDue;
    return finals;
  }

  /**
   * How long a closed fixed or session window is kept: for late updates; a closed session one gap
   * more, so that an event that would have joined it is recognised as late instead of starting a
   * new session.
   */
  private keptAfterClose(): number {
    return this.retentionMs + (this.spec.kind === 'session' ? this.spec.gapMs : 0);
  }

  /**
   * A key's fixed or session windows. A key seen for the first time gets its map at once (its place
   * in the order of finals); `advance` removes it again if no window was stored.
   */
  private windowsFor(key: string): Map<number, StoredWindow<A>> {
    let byStart = this.windows.get(key);
    if (!byStart) {
      byStart = new Map<number, StoredWindow<A>>();
      this.windows.set(key, byStart);
      this.maybeEmpty.add(key);
    }
    return byStart;
  }

  /** The watermark at which a stored window next changes: it closes, or (closed) it expires. */
  private dueOf(stored: StoredWindow<A>, closesAt = closeTime(this.spec, stored.window, this.graceMs)): number {
    const expiresAt = closesAt + this.keptAfterClose();
    // A negative retention can expire a window before it closes: whichever comes first.
    return stored.finalEmitted ? expiresAt : Math.min(closesAt, expiresAt);
  }

  /** The current value of every window of a key that is still held, oldest first. */
  windowsOf(key: string): WindowResult<A>[] {
    if (this.spec.kind === 'sliding') {
      const finalSet = this.slidingFinal.get(key);
      return (this.events.get(key) ?? []).map((event) => ({
        key,
        window: this.slidingWindow(event.time),
        value: this.slidingValue(key, event.time),
        final: finalSet?.has(event.time) ?? false,
      }));
    }
    return [...(this.windows.get(key)?.values() ?? [])]
      .sort((a, b) => a.window.start - b.window.start)
      .map((stored) => ({ key, window: stored.window, value: stored.value, final: stored.finalEmitted }));
  }

  // ---- tumbling and hopping ----------------------------------------------------------------

  private addFixed(
    spec: Extract<WindowSpec, { kind: 'tumbling' | 'hopping' }>,
    key: string,
    time: number,
    value: V,
    watermark: number,
  ): AddOutcome<A> {
    const byStart = this.windowsFor(key);
    const updates: WindowResult<A>[] = [];
    let late = false;
    let updatedLate = false;
    for (const window of fixedWindowsFor(spec, time)) {
      const closed = closeTime(spec, window, this.graceMs) <= watermark;
      if (closed) {
        late = true;
        const stored = byStart.get(window.start);
        if (this.latePolicy !== 'update' || !stored) continue;
        stored.value = this.aggregation.add(stored.value, value);
        updatedLate = true;
        updates.push({ key, window, value: stored.value, final: true });
        continue;
      }
      const stored = byStart.get(window.start) ?? { window, value: this.aggregation.init(), finalEmitted: false };
      stored.value = this.aggregation.add(stored.value, value);
      byStart.set(window.start, stored);
      this.nextDue = Math.min(this.nextDue, this.dueOf(stored));
      updates.push({ key, window, value: stored.value, final: false });
    }
    return { updates, removed: [], lateness: this.lateness(late, updatedLate, updates.length > 0) };
  }

  // ---- sliding -----------------------------------------------------------------------------

  private slidingSize(): number {
    return this.spec.kind === 'sliding' ? this.spec.sizeMs : 0;
  }

  private slidingWindow(end: number): Window {
    return { start: end - this.slidingSize(), end };
  }

  /** Aggregate of the key's events in (end − size, end]. */
  private slidingValue(key: string, end: number): A {
    const start = end - this.slidingSize();
    let accumulator = this.aggregation.init();
    for (const event of this.events.get(key) ?? []) {
      if (event.time > start && event.time <= end) accumulator = this.aggregation.add(accumulator, event.value);
    }
    return accumulator;
  }

  private addSliding(sizeMs: number, key: string, time: number, value: V, watermark: number): AddOutcome<A> {
    const ownWindowClosed = closeTime(this.spec, this.slidingWindow(time), this.graceMs) <= watermark;
    if (ownWindowClosed && this.latePolicy !== 'update') {
      this.lateCount++;
      return { updates: [], removed: [], lateness: this.latePolicy === 'dead-letter' ? 'dead-letter' : 'dropped' };
    }
    const events = this.events.get(key) ?? [];
    let index = events.length;
    while (index > 0 && (events[index - 1]?.time ?? 0) > time) index--;
    events.splice(index, 0, { time, value });
    this.events.set(key, events);
    // The record's own window, then every later window that now also contains it.
    const ends = new Set<number>([time]);
    for (const event of events) if (event.time > time && event.time - sizeMs < time) ends.add(event.time);
    const finalSet = this.slidingFinal.get(key);
    const updates: WindowResult<A>[] = [];
    for (const end of [...ends].sort((a, b) => a - b)) {
      const closed = closeTime(this.spec, this.slidingWindow(end), this.graceMs) <= watermark;
      if (closed && this.latePolicy !== 'update') continue;
      updates.push({
        key,
        window: { start: end - sizeMs, end },
        value: this.slidingValue(key, end),
        final: closed || (finalSet?.has(end) ?? false),
      });
    }
    if (ownWindowClosed) {
      this.lateCount++;
      return { updates, removed: [], lateness: 'updated' };
    }
    return { updates, removed: [], lateness: 'on-time' };
  }

  // ---- session -----------------------------------------------------------------------------

  private addSession(gapMs: number, key: string, time: number, value: V, watermark: number): AddOutcome<A> {
    const aggregation = this.aggregation;
    const merge = (left: A, right: A): A => (aggregation.merge ? aggregation.merge(left, right) : right);
    const byStart = this.windowsFor(key);
    // Sessions the event touches: those it falls within a gap of.
    const touched = [...byStart.values()].filter((stored) => time >= stored.window.start - gapMs && time <= stored.window.end + gapMs);
    const closedTouched = touched.filter((stored) => closeTime(this.spec, stored.window, this.graceMs) <= watermark);
    const isLate = closeTime(this.spec, { start: time, end: time }, this.graceMs) <= watermark || closedTouched.length > 0;
    if (isLate && (this.latePolicy !== 'update' || touched.length === 0)) {
      this.lateCount++;
      return { updates: [], removed: [], lateness: this.latePolicy === 'dead-letter' ? 'dead-letter' : 'dropped' };
    }
    let merged: StoredWindow<A> = {
      window: { start: time, end: time },
      value: this.aggregation.add(this.aggregation.init(), value),
      finalEmitted: false,
    };
    for (const stored of touched) {
      byStart.delete(stored.window.start);
      merged = {
        window: { start: Math.min(merged.window.start, stored.window.start), end: Math.max(merged.window.end, stored.window.end) },
        value: merge(stored.value, merged.value),
        finalEmitted: merged.finalEmitted || stored.finalEmitted,
      };
    }
    byStart.set(merged.window.start, merged);
    this.nextDue = Math.min(this.nextDue, this.dueOf(merged));
    // Sessions absorbed into the merged one are gone; one that only grew is updated in place.
    const removed = touched
      .filter((stored) => stored.window.start !== merged.window.start || stored.window.end !== merged.window.end)
      .map((stored) => ({ key, window: stored.window }));
    if (isLate) this.lateCount++;
    return {
      updates: [{ key, window: merged.window, value: merged.value, final: isLate }],
      removed,
      lateness: isLate ? 'updated' : 'on-time',
    };
  }

  /** A hopping record that still reached an open window counts as on time. */
  private lateness(late: boolean, updatedLate: boolean, anyUpdate: boolean): AddOutcome<A>['lateness'] {
    if (!late || (anyUpdate && !updatedLate)) return 'on-time';
    this.lateCount++;
    if (updatedLate) return 'updated';
    return this.latePolicy === 'dead-letter' ? 'dead-letter' : 'dropped';
  }
}
