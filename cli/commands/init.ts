import path from 'node:path';
import { scaffoldProject } from '../../app/init.js';
import { PROJECT_ROOT } from '../../common/config.js';
import type { ConfigContext } from '../action.js';

/** `sluice init <dir>`: a project of one's own (a topology, a raw schema, sample data, a README); overwrites nothing. */
export async function initCommand(_context: ConfigContext, dir: string): Promise<number> {
  const written = await scaffoldProject(dir);
  const folder = path.resolve(dir);
  process.stdout.write(
    [
      `created ${folder}:`,
      ...written.map((file) => `  ${path.relative(folder, file)}`),
      `next: cd ${dir} && npx --prefix ${PROJECT_ROOT} sluice up --topology .   (README.md there has the rest)`,
      '',
    ].join('\n'),
  );
  return 0;
}
