import { existsSync, statSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import { defineTopology, type Topology } from '../topology/index.js';

/**
 * Loading a user's topology: a `sluice.config.ts` (or .js/.mjs) whose default export is
 * `defineTopology({...})`. The file imports the declarations from `sluice`; for a project outside
 * this package, a resolve hook maps that name to this installation, so no install step is needed.
 */
export const TOPOLOGY_FILES = ['sluice.config.ts', 'sluice.config.mts', 'sluice.config.js', 'sluice.config.mjs'] as const;

export class TopologyLoadError extends SluiceError {
  constructor(message: string, options: { readonly cause?: unknown } = {}) {
    super('SLUICE_TOPOLOGY', message, options);
  }
}

/** The topology file a location names: the file itself, or the config file in a folder. */
export function topologyFile(location: string): string {
  const absolute = path.resolve(location);
  if (!existsSync(absolute)) throw new TopologyLoadError(`no topology at ${absolute}: give a sluice.config.ts or a folder holding one`);
  if (statSync(absolute).isFile()) return absolute;
  const found = TOPOLOGY_FILES.map((name) => path.join(absolute, name)).find((file) => existsSync(file));
  if (!found)
    throw new TopologyLoadError(`${absolute} holds no ${TOPOLOGY_FILES.join(' / ')}; create one with \`sluice init ${location}\``);
  return found;
}

/** Whether this code runs compiled (dist/, plain JavaScript) rather than from the TypeScript sources. */
const COMPILED = import.meta.url.endsWith('.js');

/** Set once the resolve hook is registered in this process (bin/sluice.js may have done it). */
const RESOLVER_REGISTERED = Symbol.for('sluice.resolver');

/**
 * Lets `import ... from 'sluice'` resolve to this installation from anywhere: to the very module
 * this code uses (compiled or source), so a topology's declarations are the ones the CLI checks.
 * It must come before tsx's loader in the chain of hooks (registered earlier), so that its
 * answers reach tsx: bin/sluice.js registers it first when it starts tsx.
 */
function registerSluiceResolver(): void {
  const flags = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (flags[RESOLVER_REGISTERED]) return;
  flags[RESOLVER_REGISTERED] = true;
  register(new URL('./sluice-resolver.mjs', import.meta.url), {
    data: { api: new URL(`../topology/index.${COMPILED ? 'js' : 'ts'}`, import.meta.url).href },
  });
}

let typescriptLoader: Promise<void> | undefined;

/**
 * A topology written in TypeScript needs a loader. From the sources one is already there (tsx,
 * vitest); the compiled CLI registers tsx's only now, when it loads a .ts file — so commands that
 * need no topology do not pay for it.
 */
function loadTypeScriptSupport(file: string): Promise<void> {
  if (!COMPILED || !/\.[cm]?ts$/.test(file)) return Promise.resolve();
  typescriptLoader ??= import('tsx/esm/api').then(({ register: registerTsx }) => {
    registerTsx();
  });
  return typescriptLoader;
}

const cache = new Map<string, Promise<LoadedTopology>>();

export interface LoadedTopology extends Topology {
  /** The file it came from. */
  readonly file: string;
}

/** Imports a topology file (TypeScript runs through tsx) and checks what it exports. */
export function loadTopology(location: string): Promise<LoadedTopology> {
  const file = topologyFile(location);
  let loading = cache.get(file);
  if (!loading) {
    loading = importTopology(file);
    cache.set(file, loading);
  }
  return loading;
}

async function importTopology(file: string): Promise<LoadedTopology> {
  registerSluiceResolver();
  let module: { default?: unknown };
  try {
    await loadTypeScriptSupport(file);
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (cause) {
    throw new TopologyLoadError(`loading the topology ${file} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  const exported = module.default;
  if (typeof exported !== 'object' || exported === null || !('sources' in exported)) {
    throw new TopologyLoadError(`${file} must \`export default defineTopology({ sources, views, models })\``);
  }
  try {
    // Checked again: a plain object (not made by defineTopology) gets the same checks.
    return { ...defineTopology(exported as Topology), file };
  } catch (cause) {
    throw new TopologyLoadError(`${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The demo topology of this repository (what `npm start` runs). */
export const EXAMPLE_TOPOLOGY = path.join(PROJECT_ROOT, 'examples', 'fraud');
