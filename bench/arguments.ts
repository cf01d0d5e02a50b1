/** `--<name>=<n>` from the command line, a positive whole number: `fallback` unless given. */
export function numberArgument(name: string, fallback: number): number {
  const prefix = `--${name}=`;
  const argument = process.argv.find((value) => value.startsWith(prefix));
  if (argument === undefined) return fallback;
  const value = Number(argument.slice(prefix.length));
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} wants a positive whole number, not ${argument}`);
  return value;
}

/** `--events=<n>` from the command line: how many events a benchmark sends, `fallback` unless given. */
export function eventsArgument(fallback: number): number {
  return numberArgument('events', fallback);
}
