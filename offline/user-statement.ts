import { ClickHouseError } from './errors.js';

/**
 * Whether a user's statement may run on the SQL endpoint, from what ClickHouse's own parser says
 * about it: how many statements the text holds and their class (chDB's `chdb_classify_query_n`),
 * and the statement as ClickHouse formats it (`formatQuery`). No SQL is parsed here.
 *
 * - Exactly one statement: ClickHouse's HTTP interface runs one per request.
 * - Class READ_ONLY only. CONTROL statements are refused although the users' connection is
 *   `readonly=1`, because some run in chDB's client rather than under the engine's access
 *   control: `INTO OUTFILE` writes a file, `KILL QUERY` may cancel any query of the one user
 *   chDB has (sluice's own inserts included), `USE` and `SET param_` change the connection.
 * - No reference to the `file` function. In chDB (ClickHouse's LOCAL mode) the scalar
 *   `file(path)` reads any file the process can, without a grant and ignoring user_files_path
 *   (src/Functions/FunctionFile.cpp: "If run in Local mode, no need for path checking"). It is the
 *   one capability the engine's grants cannot take away, so the formatted statement is searched
 *   for the identifier `file` — as a call, or passed by name to a higher-order function, or bound
 *   through an `Identifier` parameter — outside string literals.
 */
export type QueryClassName = 'READ_ONLY' | 'MUTATING' | 'MUTATING_GLOBAL' | 'CONTROL' | 'UNKNOWN';

export interface StatementFacts {
  /** `formatQuery(text)`: the statement as ClickHouse prints it (comments gone, quoting canonical). */
  readonly canonical: string;
  readonly statementCount: number;
  readonly queryClass: QueryClassName;
  /** The request's `param_<name>` values. */
  readonly params: Readonly<Record<string, string>>;
}

export interface StatementAnalysis {
  /** The FORMAT clause's format, when the statement has one. */
  readonly format: string | undefined;
}

/** Functions that bypass the engine's access control in embedded (LOCAL) mode. */
const UNGUARDED_FUNCTIONS = new Set(['file']);

const CLASS_HINTS: Readonly<Record<QueryClassName, string>> = {
  READ_ONLY: '',
  MUTATING: ' (it writes)',
  MUTATING_GLOBAL: ' (it changes users, functions or other global objects)',
  CONTROL: ' (SET, USE, SYSTEM, KILL, INTO OUTFILE, transactions, ...)',
  UNKNOWN: '',
};

export function inspectUserStatement(facts: StatementFacts): StatementAnalysis {
  if (facts.statementCount === 0) throw new ClickHouseError(62, 'Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)');
  if (facts.statementCount > 1)
    throw new ClickHouseError(
      62,
      `Code: 62. DB::Exception: Syntax error (Multi-statements are not allowed): the request holds ${facts.statementCount} statements; send one per request. (SYNTAX_ERROR)`,
    );
  if (facts.queryClass !== 'READ_ONLY')
    throw new ClickHouseError(
      164,
      `Code: 164. DB::Exception: Cannot execute query in readonly mode: this endpoint runs read-only statements, and ClickHouse's parser classifies this one as ${facts.queryClass}${CLASS_HINTS[facts.queryClass]}. (READONLY)`,
    );
  const tokens = scan(facts.canonical);
  const named = [
    ...tokens.identifiers,
    ...tokens.placeholders
      .filter((placeholder) => placeholder.type.trim().toLowerCase() === 'identifier')
      .map((placeholder) => unquote(facts.params[placeholder.name] ?? '')),
  ];
  const unguarded = named.find((name) => UNGUARDED_FUNCTIONS.has(name));
  if (unguarded !== undefined)
    throw new ClickHouseError(
      497,
      `Code: 497. DB::Exception: Not enough privileges: the function ${unguarded}() reads the server's files and is not available on this endpoint` +
        ` (a column of that name can be read qualified, as t.${unguarded}). (ACCESS_DENIED)`,
    );
  return { format: tokens.format };
}

interface Tokens {
  /** Unqualified identifiers (not after a dot), outside string literals. */
  readonly identifiers: string[];
  readonly placeholders: { readonly name: string; readonly type: string }[];
  readonly format: string | undefined;
}

/** The identifiers, `{name:Type}` placeholders and FORMAT clause of ClickHouse's formatted text. */
export function scan(canonical: string): Tokens {
  const identifiers: string[] = [];
  const placeholders: { name: string; type: string }[] = [];
  let previous = '';
  let index = 0;
  const quoted = (close: string): string => {
    let value = '';
    index++;
    while (index < canonical.length && canonical[index] !== close) {
      if (canonical[index] === '\\') index++;
      value += canonical[index] ?? '';
      index++;
    }
    index++;
    return value;
  };
  while (index < canonical.length) {
    const char = canonical[index] ?? '';
    if (char === "'") {
      quoted("'");
      previous = "'";
    } else if (char === '`' || char === '"') {
      const name = quoted(char);
      if (previous !== '.') identifiers.push(name);
      previous = 'x';
    } else if (char === '{') {
      const end = canonical.indexOf('}', index);
      const body = canonical.slice(index + 1, end < 0 ? canonical.length : end);
      const colon = body.indexOf(':');
      if (colon > 0) placeholders.push({ name: body.slice(0, colon).trim(), type: body.slice(colon + 1) });
      index = end < 0 ? canonical.length : end + 1;
      previous = '}';
    } else if (/[A-Za-z_]/.test(char)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(canonical.slice(index))?.[0] ?? char;
      if (previous !== '.') identifiers.push(word);
      index += word.length;
      previous = 'x';
    } else if (/[0-9]/.test(char)) {
      index += /^[0-9][0-9A-Za-z_.]*/.exec(canonical.slice(index))?.[0].length ?? 1;
      previous = '0';
    } else {
      if (!/\s/.test(char)) previous = char;
      index++;
    }
  }
  const format = [...canonical.matchAll(/(?:^|\n)FORMAT (\S+)/g)].at(-1)?.[1];
  return { identifiers, placeholders, format };
}

function unquote(name: string): string {
  const trimmed = name.trim();
  const quote = trimmed[0];
  return (quote === '`' || quote === '"') && trimmed.endsWith(quote) ? trimmed.slice(1, -1) : trimmed;
}
