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
