import { describe, expect, it } from 'vitest';
import { checkCanRead, checkCompatibility, type CompatibilityLevel, type IncompatibilityType } from './compatibility.js';
import { parseSchemaText } from './model.js';

const node = (schema: unknown) => parseSchemaText(JSON.stringify(schema)).node;

const record = (fields: unknown[], extra: Record<string, unknown> = {}) => ({
  type: 'record',
  name: 'R',
  namespace: 'ns',
  fields,
  ...extra,
});
const field = (name: string, type: unknown, extra: Record<string, unknown> = {}) => ({ name, type, ...extra });
const colour = (symbols: string[], extra: Record<string, unknown> = {}) => ({ type: 'enum', name: 'Colour', symbols, ...extra });

// [case, writer, reader, expected problem type or null when the reader can read the writer's data]
const cases: [string, unknown, unknown, IncompatibilityType | null][] = [
  ['same primitive', 'string', 'string', null],
  ['int promoted to long', 'int', 'long', null],
  ['int promoted to float', 'int', 'float', null],
  ['int promoted to double', 'int', 'double', null],
  ['long promoted to float', 'long', 'float', null],
  ['long promoted to double', 'long', 'double', null],
  ['float promoted to double', 'float', 'double', null],
  ['string read as bytes', 'string', 'bytes', null],
  ['bytes read as string', 'bytes', 'string', null],
  ['long not narrowed to int', 'long', 'int', 'TYPE_MISMATCH'],
  ['double not narrowed to float', 'double', 'float', 'TYPE_MISMATCH'],
  ['float not read as long', 'float', 'long', 'TYPE_MISMATCH'],
  ['int not read as string', 'int', 'string', 'TYPE_MISMATCH'],
  ['boolean not read as int', 'boolean', 'int', 'TYPE_MISMATCH'],
  ['null not read as string', 'null', 'string', 'TYPE_MISMATCH'],
  ['record vs primitive', record([field('a', 'int')]), 'int', 'TYPE_MISMATCH'],
  ['identical records', record([field('a', 'int')]), record([field('a', 'int')]), null],
  [
    'reader adds field with default',
    record([field('a', 'int')]),
    record([field('a', 'int'), field('b', 'string', { default: 'x' })]),
    null,
  ],
  [
    'reader adds field without default',
    record([field('a', 'int')]),
    record([field('a', 'int'), field('b', 'string')]),
    'READER_FIELD_MISSING_DEFAULT_VALUE',
  ],
  ['reader drops a field', record([field('a', 'int'), field('b', 'string')]), record([field('a', 'int')]), null],
  ['field promoted inside record', record([field('a', 'int')]), record([field('a', 'long')]), null],
  ['field narrowed inside record', record([field('a', 'long')]), record([field('a', 'int')]), 'TYPE_MISMATCH'],
  ['field renamed with alias', record([field('old', 'int')]), record([field('new', 'int', { aliases: ['old'] })]), null],
  [
    'field renamed without alias or default',
    record([field('old', 'int')]),
    record([field('new', 'int')]),
    'READER_FIELD_MISSING_DEFAULT_VALUE',
  ],
  ['record renamed without alias', record([field('a', 'int')]), record([field('a', 'int')], { name: 'S' }), 'NAME_MISMATCH'],
  ['record renamed with alias', record([field('a', 'int')]), record([field('a', 'int')], { name: 'S', aliases: ['R'] }), null],
  ['record moved to another namespace', record([field('a', 'int')]), record([field('a', 'int')], { namespace: 'other' }), null],
  ['enum gains a symbol', colour(['RED', 'GREEN']), colour(['RED', 'GREEN', 'BLUE']), null],
  ['enum loses a symbol', colour(['RED', 'GREEN', 'BLUE']), colour(['RED', 'GREEN']), 'MISSING_ENUM_SYMBOLS'],
  ['enum loses a symbol but has a default', colour(['RED', 'GREEN', 'BLUE']), colour(['RED', 'GREEN'], { default: 'RED' }), null],
  ['enum renamed', colour(['RED']), { type: 'enum', name: 'Color', symbols: ['RED'] }, 'NAME_MISMATCH'],
  ['fixed same size', { type: 'fixed', name: 'F', size: 16 }, { type: 'fixed', name: 'F', size: 16 }, null],
  ['fixed resized', { type: 'fixed', name: 'F', size: 16 }, { type: 'fixed', name: 'F', size: 8 }, 'FIXED_SIZE_MISMATCH'],
  ['array items promoted', { type: 'array', items: 'int' }, { type: 'array', items: 'long' }, null],
  ['array items narrowed', { type: 'array', items: 'long' }, { type: 'array', items: 'int' }, 'TYPE_MISMATCH'],
  ['map values promoted', { type: 'map', values: 'float' }, { type: 'map', values: 'double' }, null],
  ['map values mismatched', { type: 'map', values: 'string' }, { type: 'map', values: 'int' }, 'TYPE_MISMATCH'],
  ['array read as map', { type: 'array', items: 'int' }, { type: 'map', values: 'int' }, 'TYPE_MISMATCH'],
  ['plain type read by a union containing it', 'string', ['null', 'string'], null],
  ['plain type read by a union through promotion', 'int', ['null', 'long'], null],
  ['plain type read by a union without it', 'string', ['null', 'int'], 'MISSING_UNION_BRANCH'],
  ['union read by a wider union', ['null', 'string'], ['null', 'string', 'int'], null],
  ['union read by a narrower union', ['null', 'string', 'int'], ['null', 'string'], 'MISSING_UNION_BRANCH'],
  ['union read by a plain type covering each branch', ['int', 'long'], 'long', null],
  ['union read by a plain type missing a branch', ['null', 'string'], 'string', 'TYPE_MISMATCH'],
  [
    'optional field made required',
    record([field('a', ['null', 'string'], { default: null })]),
    record([field('a', 'string')]),
    'TYPE_MISMATCH',
  ],
  ['required field made optional', record([field('a', 'string')]), record([field('a', ['null', 'string'], { default: null })]), null],
  [
    'nested record gains a required field',
    record([field('inner', record([field('x', 'int')], { name: 'Inner' }))]),
    record([field('inner', record([field('x', 'int'), field('y', 'int')], { name: 'Inner' }))]),
    'READER_FIELD_MISSING_DEFAULT_VALUE',
  ],
  [
    'nested record gains a defaulted field',
    record([field('inner', record([field('x', 'int')], { name: 'Inner' }))]),
    record([field('inner', record([field('x', 'int'), field('y', 'int', { default: 0 })], { name: 'Inner' }))]),
    null,
  ],
  [
    'enum inside array loses a symbol',
    { type: 'array', items: colour(['RED', 'BLUE']) },
    { type: 'array', items: colour(['RED']) },
    'MISSING_ENUM_SYMBOLS',
  ],
  [
    'recursive list, unchanged',
    record([field('value', 'int'), field('next', ['null', 'R'], { default: null })]),
    record([field('value', 'int'), field('next', ['null', 'R'], { default: null })]),
    null,
  ],
  [
    'recursive list, value promoted',
    record([field('value', 'int'), field('next', ['null', 'R'], { default: null })]),
    record([field('value', 'long'), field('next', ['null', 'R'], { default: null })]),
    null,
  ],
  [
    'recursive list, field added without default',
    record([field('value', 'int'), field('next', ['null', 'R'], { default: null })]),
    record([field('value', 'int'), field('tag', 'string'), field('next', ['null', 'R'], { default: null })]),
    'READER_FIELD_MISSING_DEFAULT_VALUE',
  ],
  ['logical type over same underlying type', { type: 'long', logicalType: 'timestamp-millis' }, 'long', null],
  ['decimal bytes read as bytes', { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 }, 'bytes', null],
];

describe('checkCanRead: the Avro specification resolution rules', () => {
  it('has a matrix of at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('%s', (_name, writer, reader, expected) => {
    const problems = checkCanRead(node(reader), node(writer));
    if (expected === null) expect(problems).toEqual([]);
    else expect(problems.map((problem) => problem.type)).toContain(expected);
  });

  it('says which field and why', () => {
    const [problem] = checkCanRead(node(record([field('a', 'int'), field('amount', 'double')])), node(record([field('a', 'int')])));
    expect(problem).toEqual({
      type: 'READER_FIELD_MISSING_DEFAULT_VALUE',
      location: '/fields/amount',
      message: "the reader's field 'amount' of record ns.R has no default value and the writer has no such field",
    });
    const [nested] = checkCanRead(node(record([field('a', 'int')])), node(record([field('a', 'string')])));
    expect(nested?.location).toBe('/fields/a/type');
  });
});

describe('checkCompatibility: registry levels', () => {
  const v1 = node(record([field('a', 'int')]));
  const v2 = node(record([field('a', 'int'), field('b', 'string', { default: '' })]));
  const addRequired = node(record([field('a', 'int'), field('b', 'string', { default: '' }), field('c', 'string')]));
  const dropRequired = node(record([field('b', 'string', { default: '' })]));
  const dropDefaulted = node(record([field('a', 'int')]));
  const v1Narrow = node(record([field('a', 'int')]));
  const v2Wide = node(record([field('a', 'long')]));
  const v3FloatFromLong = node(record([field('a', 'float')]));
  // Reads v2's data (b is a string there) but not v1's, where b was an int.
  const onlyLatest = node(record([field('a', 'long'), field('b', 'string', { default: '' })]));

  const existing = [
    { version: 1, node: v1 },
    { version: 2, node: v2 },
  ];
  // [level, history, candidate, compatible]
  const modeCases: [CompatibilityLevel, { version: number; node: ReturnType<typeof node> }[], ReturnType<typeof node>, boolean][] = [
    ['NONE', existing, node('string'), true],
    ['BACKWARD', existing, addRequired, false],
    ['BACKWARD', existing, dropRequired, true],
    ['BACKWARD', [], addRequired, true],
    ['FORWARD', existing, dropRequired, false],
    ['FORWARD', existing, addRequired, true],
    ['FORWARD', existing, dropDefaulted, true],
    ['FULL', existing, addRequired, false],
    ['FULL', existing, dropRequired, false],
    ['FULL', existing, dropDefaulted, true],
    ['BACKWARD_TRANSITIVE', existing, v2, true],
    ['FORWARD_TRANSITIVE', existing, addRequired, true],
    ['FULL_TRANSITIVE', existing, v2, true],
    // The new schema fits the latest version but not an older one: only transitive levels see it.
    [
      'BACKWARD',
      [
        { version: 1, node: node(record([field('a', 'int'), field('b', 'int')])) },
        { version: 2, node: v2 },
      ],
      onlyLatest,
      true,
    ],
    [
      'BACKWARD_TRANSITIVE',
      [
        { version: 1, node: node(record([field('a', 'int'), field('b', 'int')])) },
        { version: 2, node: v2 },
      ],
      onlyLatest,
      false,
    ],
    [
      'FORWARD',
      [
        { version: 1, node: v2Wide },
        { version: 2, node: v3FloatFromLong },
      ],
      v1Narrow,
      true,
    ],
    [
      'FORWARD_TRANSITIVE',
      [
        { version: 1, node: node(record([field('a', 'int')])) },
        { version: 2, node: v3FloatFromLong },
      ],
      v2Wide,
      false,
    ],
    [
      'FULL',
      [
        { version: 1, node: v1Narrow },
        { version: 2, node: v2Wide },
      ],
      v2Wide,
      true,
    ],
    [
      'FULL_TRANSITIVE',
      [
        { version: 1, node: v1Narrow },
        { version: 2, node: v2Wide },
      ],
      v3FloatFromLong,
      false,
    ],
  ];

  it('has at least 15 mode cases, with a transitive-only failure', () => {
    expect(modeCases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(modeCases)('%s against %#', (level, history, candidate, compatible) => {
    const messages = checkCompatibility(level, candidate, history);
    if (compatible) expect(messages).toEqual([]);
    else expect(messages.length).toBeGreaterThan(0);
  });

  it('names the version, the field and the rule in its messages', () => {
    const history = [
      { version: 1, node: node(record([field('a', 'int'), field('b', 'int')])) },
      { version: 2, node: v2 },
    ];
    expect(checkCompatibility('BACKWARD_TRANSITIVE', onlyLatest, history)).toEqual([
      "TYPE_MISMATCH at /fields/b/type: the reader's type string cannot read the writer's int (the new schema reading data of version 1; compatibility BACKWARD_TRANSITIVE)",
    ]);
  });
});
