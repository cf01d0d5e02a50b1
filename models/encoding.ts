import { referenceCategories } from '../monitoring/statistics/index.js';

/**
 * One-hot encoding of categorical inputs, before the network: a categorical field becomes one 0/1
 * column per category training saw (at most `maxCategories`, most frequent first), named
 * `<field>=<category>`. A missing category, or one training never saw, is all zeros. The ONNX graph
 * is unchanged (its input is the numeric row with these columns); the artifact's model.json keeps
 * the vocabulary, so inference builds exactly the columns the model was trained with.
 */
export interface CategoricalEncoding {
  readonly field: string;
  readonly categories: readonly string[];
}

export function oneHotName(field: string, category: string): string {
  return `${field}=${category}`;
}

/** The vocabulary of each categorical field from training values (column-wise). */
export function learnEncodings(
  fields: readonly string[],
  rows: readonly (readonly (string | null)[])[],
  maxCategories = 20,
): CategoricalEncoding[] {
  return fields.map((field, column) => ({
    field,
    categories: referenceCategories(
      rows.map((row) => row[column] ?? null),
      maxCategories,
    ),
  }));
}

/** The network's input names: the numeric inputs, then every one-hot column. */
export function encodedInputs(numeric: readonly string[], encodings: readonly CategoricalEncoding[]): string[] {
  return [...numeric, ...encodings.flatMap(({ field, categories }) => categories.map((category) => oneHotName(field, category)))];
}

/** Numeric rows with their categorical values appended as one-hot columns. */
export function encodeRows(
  numeric: readonly (readonly (number | null)[])[],
  categorical: readonly (readonly (string | null)[])[],
  encodings: readonly CategoricalEncoding[],
): (number | null)[][] {
  return numeric.map((row, index) => [...row, ...oneHot(categorical[index] ?? [], encodings)]);
}

function oneHot(values: readonly (string | null)[], encodings: readonly CategoricalEncoding[]): number[] {
  const columns: number[] = [];
  encodings.forEach(({ categories }, position) => {
    const value = values[position] ?? null;
    for (const category of categories) columns.push(value === category ? 1 : 0);
  });
  return columns;
}

/**
 * The row a stored model scores, from named values: each input of `inputs` is a numeric value by
 * name, or a one-hot column of `encodings` (1 when the field holds that category, else 0).
 * Inputs neither names are missing (null: filled with the training mean).
 */
export function rowFor(
  inputs: readonly string[],
  encodings: readonly CategoricalEncoding[] | undefined,
  numeric: Readonly<Record<string, number | null>>,
  categorical: Readonly<Record<string, string | null>>,
): (number | null)[] {
  const columns = columnsOf(encodings ?? []);
  return inputs.map((input) => {
    const column = columns.get(input);
    if (column) return categorical[column.field] === column.category ? 1 : 0;
    return numeric[input] ?? null;
  });
}

const columnCache = new WeakMap<readonly CategoricalEncoding[], ReadonlyMap<string, { field: string; category: string }>>();

/** One-hot column name → its field and category, built once per stored vocabulary. */
function columnsOf(encodings: readonly CategoricalEncoding[]): ReadonlyMap<string, { field: string; category: string }> {
  let columns = columnCache.get(encodings);
  if (!columns) {
    const built = new Map<string, { field: string; category: string }>();
    for (const { field, categories } of encodings)
      for (const category of categories) built.set(oneHotName(field, category), { field, category });
    columnCache.set(encodings, built);
    columns = built;
  }
  return columns;
}
