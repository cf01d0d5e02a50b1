#!/usr/bin/env -S node --max-semi-space-size=128 --heap-growing-percent=50 --initial-old-space-size=512
// The `sluice` command. It runs the compiled CLI in dist/ (built by `npm ci`, or `npm run build:dist`)
// when that build is newer than every source file; otherwise — a checkout without a build, or sources
// edited since — it runs the TypeScript sources through tsx's loader, which is slower to start.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, URL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The files a build compiles or copies. */
const BUILT = /\.(ts|mjs|avsc|xml|java)$/;

/** Whether dist/ holds a build at least as new as the sources it was built from. */
function compiledIsCurrent() {
  let build;
  try {
    build = JSON.parse(readFileSync(path.join(root, 'dist', 'build.json'), 'utf8'));
  } catch {
    return false;
  }
  const newerThanBuild = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const entry of entries) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (newerThanBuild(file)) return true;
      } else if (BUILT.test(entry.name) && !entry.name.endsWith('.test.ts') && statSync(file).mtimeMs > build.builtAt) {
        return true;
      }
    }
    return false;
  };
  return !build.folders.some((folder) => newerThanBuild(path.join(root, folder)));
}

if (compiledIsCurrent()) {
  await import('../dist/cli/main.js');
} else {
  // Topology files get `sluice` (and are read as ES modules) through this resolve hook. It is
  // registered before tsx's loader, so that tsx sees its answers (app/topology.ts registers it when
  // the CLI runs compiled, before it loads tsx).
  const { register: registerHook } = await import('node:module');
  registerHook('../app/sluice-resolver.mjs', import.meta.url, { data: { api: new URL('../topology/index.ts', import.meta.url).href } });
  globalThis[Symbol.for('sluice.resolver')] = true;
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
