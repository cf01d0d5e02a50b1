/** Rows as an aligned text table (numbers right-aligned), a header and a rule under it. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const numeric = header.map((_, column) => rows.length > 0 && rows.every((row) => /^-?[\d.,e+%*-]*$/.test(row[column] ?? '')));
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** A number for a table: fixed digits, or '-' when absent. */
export function cell(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return String(value);
  return Math.abs(value) < 10 ** -digits ? value.toExponential(2) : value.toFixed(digits);
}
