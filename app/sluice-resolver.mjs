// A Node.js module resolve hook, registered by app/topology.ts: a topology file anywhere on disk
// may `import { ... } from 'sluice'` and gets this installation's declarations API.
let api;

export function initialize(data) {
  api = data.api;
}

export async function resolve(specifier, context, next) {
  if (specifier === 'sluice') return { url: api, shortCircuit: true };
  return next(specifier, context);
}
