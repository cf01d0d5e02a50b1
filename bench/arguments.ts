/** `--events=<n>` from the command line: how many events a benchmark sends, `fallback` unless given. */
export function eventsArgument(fallback: number): number {
  const argument = process.argv.find((value) => value.startsWith('--events='));
  if (argument === undefined) return fallback;
  const events = Number(argument.slice('--events='.length));
  if (!Number.isInteger(events) || events <= 0) throw new Error(`--events wants a positive whole number, not ${argument}`);
  return events;
}
