// A Node.js module resolve hook, registered by app/topology.ts, for topology files:
// - anywhere on disk, `import { ... } from 'sluice'` gets this installation's declarations API;
// - a TypeScript file outside node_modules is an ES module, whatever package.json says around it
//   (a topology in a folder without one would otherwise be read as CommonJS, where neither
//   `import ... from 'sluice'` nor `export default` works). `.cts` files stay CommonJS.
let api;

export function initialize(data) {
  api = data.api;
}

export async function resolve(specifier, context, next) {
  if (specifier === 'sluice') return { url: api, shortCircuit: true };
  const resolved = await next(specifier, context);
  if (/\.m?ts$/.test(resolved.url) && resolved.url.startsWith('file:') && !resolved.url.includes('/node_modules/'))
    return { ...resolved, format: 'module' };
  return resolved;
}
