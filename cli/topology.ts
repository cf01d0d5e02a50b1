import { existsSync } from 'node:fs';
import path from 'node:path';
import { readStackState } from '../app/stack-file.js';
import { loadTopology, TOPOLOGY_FILES, TopologyLoadError, type LoadedTopology } from '../app/topology.js';
import type { SluiceConfig } from '../common/config.js';

/**
 * The topology a command works on: `--topology` / SLUICE_TOPOLOGY, else the one the running
 * stack of this data directory loaded, else a sluice.config.ts in the current folder.
 */
export async function commandTopology(config: SluiceConfig): Promise<LoadedTopology> {
  if (config.topology) return loadTopology(config.topology);
  const running = await readStackState(config.dataDir);
  if (running?.topology && existsSync(running.topology)) return loadTopology(running.topology);
  const here = TOPOLOGY_FILES.map((name) => path.resolve(name)).find((file) => existsSync(file));
  if (here) return loadTopology(here);
  throw new TopologyLoadError(
    `no topology: pass --topology <folder or sluice.config.ts>, set SLUICE_TOPOLOGY, or run in a folder with a sluice.config.ts (\`sluice init <dir>\` makes one; the demo is examples/fraud)`,
  );
}
