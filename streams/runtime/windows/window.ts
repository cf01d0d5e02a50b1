/**
 * Windows over event time — the one definition both window engines use: the feature engine
 * (a row per event over the entity's history) and the windowed aggregator (results per closed
 * window, by watermark). Tumbling and hopping windows are half-open, [start, end); a sliding
 * window of size s at time t holds the events in (t − s, t]; a session holds events no further
 * apart than its gap, [first, last], bounded by `maxSpanMs` when given.
 */
export interface Window {
  readonly start: number;
  readonly end: number;
}

export interface TumblingWindows {
  readonly kind: 'tumbling';
  readonly sizeMs: number;
}
export interface HoppingWindows {
  readonly kind: 'hopping';
  readonly sizeMs: number;
  readonly advanceMs: number;
}
export interface SlidingWindows {
  readonly kind: 'sliding';
  readonly sizeMs: number;
}
export interface SessionWindows {
  readonly kind: 'session';
  readonly gapMs: number;
  readonly maxSpanMs?: number;
}
export type WindowSpec = TumblingWindows | HoppingWindows | SlidingWindows | SessionWindows;

export function tumbling(sizeMs: number): TumblingWindows {
  positive(sizeMs, 'window size');
  return { kind: 'tumbling', sizeMs };
}

export function hopping(sizeMs: number, advanceMs: number): HoppingWindows {
  positive(sizeMs, 'window size');
  positive(advanceMs, 'window advance');
  if (advanceMs > sizeMs)
    throw new Error(`hopping advance ${advanceMs} ms exceeds the size ${sizeMs} ms: events would fall between windows`);
  return { kind: 'hopping', sizeMs, advanceMs };
}

export function sliding(sizeMs: number): SlidingWindows {
  positive(sizeMs, 'window size');
  return { kind: 'sliding', sizeMs };
}

export function session(gapMs: number, maxSpanMs?: number): SessionWindows {
  positive(gapMs, 'session gap');
  if (maxSpanMs === undefined) return { kind: 'session', gapMs };
  positive(maxSpanMs, 'session maximum span');
  return { kind: 'session', gapMs, maxSpanMs };
}

function positive(value: number, what: string): void {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${what} must be a positive number of milliseconds, got ${value}`);
}

/** The fixed windows (tumbling, hopping) an event time falls in, oldest first. */
export function fixedWindowsFor(spec: TumblingWindows | HoppingWindows, timestamp: number): Window[] {
  const advance = spec.kind === 'tumbling' ? spec.sizeMs : spec.advanceMs;
  const lastStart = Math.floor(timestamp / advance) * advance;
  const windows: Window[] = [];
  for (let start = lastStart; start > timestamp - spec.sizeMs; start -= advance) windows.unshift({ start, end: start + spec.sizeMs });
  return windows;
}

/**
 * The first watermark at which a window is closed. Half-open windows [start, end) close at
 * end + grace; sliding windows include their end, so they close one millisecond later; a
 * session can still be extended by an event up to a gap after its last one.
 */
export function closeTime(spec: WindowSpec, window: Window, graceMs: number): number {
  switch (spec.kind) {
    case 'tumbling':
    case 'hopping':
      return window.end + graceMs;
    case 'sliding':
      return window.end + graceMs + 1;
    case 'session':
      return window.end + spec.gapMs + graceMs + 1;
  }
}

/**
 * The look-back of a row at event time t (the feature engine's semantics): a sliding window
 * covers (t − size, t]; a tumbling or hopping one [s, t] with s the earliest aligned start whose
 * window [s, s + size) still holds t. `end` is where that window ends.
 */
export function lookBack(
  spec: TumblingWindows | HoppingWindows | SlidingWindows,
  t: number,
): { readonly start: number; readonly end: number; readonly startInclusive: boolean } {
  if (spec.kind === 'sliding') return { start: t - spec.sizeMs, end: t, startInclusive: false };
  const advance = spec.kind === 'tumbling' ? spec.sizeMs : spec.advanceMs;
  const start = (Math.floor((t - spec.sizeMs) / advance) + 1) * advance;
  return { start, end: start + spec.sizeMs, startInclusive: true };
}
