#!/usr/bin/env node
// Compiles the sluice sources to JavaScript in dist/ (git-ignored), so that `sluice` starts without
// transpiling TypeScript on every call. `npm ci` runs it (the prepare script); so does
// `npm run build:dist`. Without TypeScript (`npm ci --omit=dev`) it does nothing and the CLI runs
// the sources through tsx, as before.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

let tsc;
try {
  tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  process.stdout.write('sluice: TypeScript is not installed; no dist/ build (the CLI runs the sources through tsx)\n');
  process.exit(0);
}

const started = Date.now();
// Built beside, then swapped in: a CLI started meanwhile sees the old build or none, never half of one.
const staging = path.join(root, `dist.building-${process.pid}`);
const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', staging], {
  stdio: 'inherit',
  cwd: root,
});
if (compiled.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  process.exit(compiled.status ?? 1);
}

// Files the code reads beside itself (import.meta.url): Avro contracts, the broker's pom and
// launcher, the resolve hook of topology files.
const assets = [
  ['schemas/avro', (name) => name.endsWith('.avsc')],
  ['kafka', (name) => name === 'pom.xml' || name.endsWith('.java')],
  ['app', (name) => name.endsWith('.mjs')],
];
for (const [folder, wanted] of assets) {
  mkdirSync(path.join(staging, folder), { recursive: true });
  for (const name of readdirSync(path.join(root, folder)).filter(wanted)) {
    cpSync(path.join(root, folder, name), path.join(staging, folder, name));
  }
}

// What bin/sluice.js compares with the sources' modification times to know the build is current.
// The start time counts: a source saved during the build is newer than the build.
const folders = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')).include;
writeFileSync(path.join(staging, 'build.json'), `${JSON.stringify({ builtAt: started, folders }, null, 2)}\n`);

const target = path.join(root, 'dist');
if (existsSync(target)) rmSync(target, { recursive: true, force: true });
renameSync(staging, target);
process.stdout.write('sluice: compiled CLI in dist/\n');
