import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of `.dependency-cruiser.cjs` (run by `npm run lint`), tried on a scratch tree:
 * an upward import fails the check, a downward one passes.
 */
const root = path.dirname(new URL(import.meta.url).pathname);
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');

function check(files: Record<string, string>): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-layers-'));
  try {
    fs.copyFileSync(path.join(root, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true },
      }),
    );
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    }
    const folders = [...new Set(Object.keys(files).map((file) => file.split('/')[0] ?? ''))];
    const result = spawnSync(depcruise, ['--config', '.dependency-cruiser.cjs', ...folders], { cwd: dir, encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('layer rules (npm run lint)', () => {
  it('fail on an upward import: common importing the composition root', () => {
    const result = check({
      'common/probe.ts': "import { start } from '../app/probe.js';\nexport const x = start;\n",
      'app/probe.ts': 'export const start = 1;\n',
    });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('common-imports-down-only');
  });

  it('fail when the core imports an example topology, or sibling stages import each other', () => {
    expect(
      check({
        'jobs/probe.ts': "import { v } from '../examples/demo/probe.js';\nexport const x = v;\n",
        'examples/demo/probe.ts': 'export const v = 1;\n',
      }).output,
    ).toContain('core-never-imports-examples');
    expect(
      check({
        'streams/inference/probe.ts': "import { v } from '../features/probe.js';\nexport const x = v;\n",
        'streams/features/probe.ts': 'export const v = 1;\n',
      }).output,
    ).toContain('streams-inference-imports-down-only');
  });

  it('pass a downward import', () => {
    const result = check({
      'app/probe.ts': "import { v } from '../common/probe.js';\nexport const x = v;\n",
      'common/probe.ts': 'export const v = 1;\n',
    });
    expect(result.output).toContain('no dependency violations');
    expect(result.status).toBe(0);
  });
});
