/**
 * The layers of sluice, bottom to top (README "Layout"): a module may import its own layer and the
 * layers below it, never one above. Siblings on one line of LAYERS do not import each other.
 * `npm run lint` runs this (depcruise); `integration-tests/`, `bench/` and `*.test.ts` files may
 * import anything.
 */
const LAYERS = [
  ['common'],
  ['kafka'],
  ['schemas'],
  ['state'],
  ['streams/runtime'],
  ['topology'],
  ['offline'],
  ['monitoring'],
  ['models'],
  ['streams/ingest', 'streams/features', 'streams/inference', 'streams/monitoring', 'streams/sink'],
  ['serving'],
  ['jobs'],
  ['app'],
  ['cli'],
];

const folder = (name) => `^${name.replace('/', '\\/')}/`;
const rules = [];
LAYERS.forEach((layer, level) => {
  for (const name of layer) {
    const above = LAYERS.slice(level + 1).flat();
    const siblings = layer.filter((other) => other !== name);
    const forbidden = [...above, ...siblings];
    if (forbidden.length === 0) continue;
    rules.push({
      name: `${name.replace('/', '-')}-imports-down-only`,
      severity: 'error',
      comment: `${name} may import only ${LAYERS.slice(0, level).flat().join(', ') || 'nothing else'} (and itself)`,
      // Tests may use higher layers as fixtures (a unit test of offline/ builds rows with the features engine).
      from: { path: folder(name), pathNot: '\\.test\\.ts$' },
      to: { path: forbidden.map(folder) },
    });
  }
});

module.exports = {
  forbidden: [
    ...rules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No module may depend on itself through others.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-never-imports-examples',
      severity: 'error',
      comment: "Example topologies are loaded like a user's, never imported by the core.",
      from: { pathNot: ['^(examples|integration-tests|bench)/', '\\.test\\.ts$'] },
      to: { path: '^examples/' },
    },
    {
      name: 'examples-use-the-public-api',
      severity: 'error',
      comment: 'A topology imports declarations (topology/) and helpers (common/) only.',
      from: { path: '^examples/' },
      to: { path: '^(kafka|schemas|state|streams|offline|monitoring|models|serving|jobs|app|cli)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|\\.cache|\\.sluice|\\.scratch|dist|dist\\.building-[0-9]+)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
