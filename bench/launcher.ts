import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';

/** The `sluice` command: a script that Node runs with the flags of its shebang. */
export const SLUICE = path.join(PROJECT_ROOT, 'bin', 'sluice.js');

/**
 * Node's flags as the `sluice` command runs it: those after `node` in its first line,
 * `#!/usr/bin/env -S node --flag=value …`. The benchmarks start the pipeline with them, so that
 * they measure it as users run it.
 */
export function launcherNodeFlags(source = readFileSync(SLUICE, 'utf8')): string[] {
  const shebang = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)\n/.exec(source);
  if (!shebang) throw new Error(`bin/sluice.js does not start with "#!/usr/bin/env -S node [--flags]": ${source.split('\n')[0]}`);
  return (shebang[1] as string).split(' ').filter((flag) => flag !== '');
}
