import { describe, expect, it } from 'vitest';
import { ClickHouseError } from './errors.js';
import { inspectUserStatement, scan, type QueryClassName } from './user-statement.js';

const facts = (canonical: string, queryClass: QueryClassName = 'READ_ONLY', params: Record<string, string> = {}, statementCount = 1) => ({
  canonical,
  statementCount,
  queryClass,
  params,
});

function refusal(run: () => unknown): ClickHouseError {
  try {
    run();
  } catch (error) {
    if (error instanceof ClickHouseError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('inspectUserStatement', () => {
  it('lets one read-only statement through and reports its FORMAT clause', () => {
    expect(inspectUserStatement(facts('SELECT 1'))).toEqual({ format: undefined });
    expect(inspectUserStatement(facts('SELECT\n    a,\n    b\nFROM t\nFORMAT JSONEachRow\n'))).toEqual({ format: 'JSONEachRow' });
  });

  it.each<[QueryClassName, RegExp]>([
    ['MUTATING', /classifies this one as MUTATING \(it writes\)/],
    ['MUTATING_GLOBAL', /MUTATING_GLOBAL/],
    ['CONTROL', /CONTROL \(SET, USE, SYSTEM, KILL, INTO OUTFILE/],
    ['UNKNOWN', /UNKNOWN/],
  ])('refuses a %s statement with READONLY (164)', (queryClass, message) => {
    const error = refusal(() => inspectUserStatement(facts('whatever', queryClass)));
    expect(error.clickhouseCode).toBe(164);
    expect(error.message).toMatch(message);
    expect(error.httpStatus).toBe(403);
  });

  it('refuses several statements and none', () => {
    expect(refusal(() => inspectUserStatement(facts('SELECT 1', 'READ_ONLY', {}, 2))).message).toMatch(/Multi-statements are not allowed/);
    expect(refusal(() => inspectUserStatement(facts('', 'UNKNOWN', {}, 0))).message).toMatch(/Empty query/);
  });

  it.each([
    "SELECT file('/etc/passwd')",
    "SELECT arrayMap(file, ['/etc/passwd'])",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    'SELECT `file`(path) FROM t',
    'SELECT "file"(path) FROM t',
    "WITH file AS f SELECT arrayMap(f, ['/x'])",
  ])('refuses the file function in %s with ACCESS_DENIED (497)', (canonical) => {
    const error = refusal(() => inspectUserStatement(facts(canonical)));
    expect(error.clickhouseCode).toBe(497);
    expect(error.message).toMatch(/file\(\) reads the server's files/);
  });

  it('refuses file bound through an Identifier parameter, and only then', () => {
    const canonical = "SELECT arrayMap({f:Identifier}, ['/etc/passwd'])";
    expect(refusal(() => inspectUserStatement(facts(canonical, 'READ_ONLY', { f: 'file' }))).clickhouseCode).toBe(497);
    expect(refusal(() => inspectUserStatement(facts(canonical, 'READ_ONLY', { f: '`file`' }))).clickhouseCode).toBe(497);
    expect(inspectUserStatement(facts(canonical, 'READ_ONLY', { f: 'toString' }))).toEqual({ format: undefined });
    expect(inspectUserStatement(facts('SELECT {f:String}', 'READ_ONLY', { f: 'file' }))).toEqual({ format: undefined });
  });

  it('does not mistake file in a string literal or a qualified column for the function', () => {
    expect(inspectUserStatement(facts("SELECT 'file(\\'/etc/passwd\\')' AS text, t.file FROM t"))).toEqual({ format: undefined });
    expect(inspectUserStatement(facts('SELECT profile, files, file_name FROM t'))).toEqual({ format: undefined });
  });
});

describe('scan', () => {
  it('finds identifiers, placeholders and the FORMAT clause outside literals', () => {
    const tokens = scan("SELECT a.b, `c d`, {x:UInt8}, 'e f', 1e10\nFROM t\nFORMAT CSV\n");
    expect(tokens.identifiers).toEqual(['SELECT', 'a', 'c d', 'FROM', 't', 'FORMAT', 'CSV']);
    expect(tokens.placeholders).toEqual([{ name: 'x', type: 'UInt8' }]);
    expect(tokens.format).toBe('CSV');
  });
});
