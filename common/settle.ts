/**
 * The values of a list of which some may still be pending: the list itself, at once, when none is
 * (no promise is made), else one promise of them all, in order. A rejection rejects the whole.
 */
export function settleAll<T>(values: readonly (T | Promise<T>)[]): T[] | Promise<T[]> {
  for (const value of values) if (value instanceof Promise) return Promise.all(values);
  return values as T[];
}
