/**
 * `npm run bench -- <name>`: runs one benchmark and prints its numbers. Benchmarks are programs,
 * not tests: they measure, they do not assert.
 */
const benchmarks: Record<string, () => Promise<{ main: () => Promise<void> }>> = {
  kafka: () => import('./kafka.js'),
  schemas: () => import('./schemas.js'),
  runtime: () => import('./runtime.js'),
  state: () => import('./state.js'),
  features: () => import('./features.js'),
  inference: () => import('./inference.js'),
  pipeline: () => import('./pipeline.js'),
  aggregate: () => import('./aggregate.js'),
  clients: () => import('./clients.js'),
  cli: () => import('./cli.js'),
  training: () => import('./training.js'),
  predict: () => import('./predict.js'),
  monitoring: () => import('./monitoring.js'),
  windows: () => import('./windows.js'),
};

const name = process.argv[2];
const load = name === undefined ? undefined : benchmarks[name];
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benchmarks).join('|')}>\n`);
  process.exit(2);
}
await (await load()).main();
