/** Prints benchmark rows as an aligned table on stdout. */
export function printTable(title: string, rows: readonly Readonly<Record<string, string | number>>[]): void {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = [columns, ...rows.map((row) => columns.map((column) => String(row[column] ?? '')))];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => line[index]?.length ?? 0)));
  const lines = cells.map((line) => line.map((cell, index) => cell.padStart(widths[index] ?? 0)).join('  '));
  process.stdout.write(`\n${title}\n${lines[0]}\n${widths.map((width) => '-'.repeat(width)).join('  ')}\n${lines.slice(1).join('\n')}\n`);
}

/** The median of values (the upper one of an even count: of two runs, the better rate); NaN for none. */
export function median(values: readonly number[]): number {
  return [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] ?? Number.NaN;
}

/** The p-th percentile (0–100) of values sorted ascending: the nearest rank at or above it; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
