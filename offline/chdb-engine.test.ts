import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../common/config.js';
import { describe, expect, it } from 'vitest';

/**
 * In a fresh process (chDB allows one data directory per process, and a loaded library stays):
 * imports the given modules, then maybe starts an engine, and says whether chDB's library is mapped
 * into the process before and after.
 */
function libraryMapped(modules: readonly string[], startEngine: boolean): { imported: boolean; started: boolean } {
  const script = `
    import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
    import os from 'node:os';
    import path from 'node:path';
    const mapped = () => readFileSync('/proc/self/maps', 'utf8').includes('libchdb');
    for (const module of ${JSON.stringify(modules)}) await import(path.resolve(module));
    const imported = mapped();
    let started = false;
    if (${String(startEngine)}) {
      const { ChdbEngine } = await import(path.resolve('offline/chdb-engine.ts'));
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-chdb-'));
      const engine = new ChdbEngine(path.join(dir, 'data'));
      started = mapped();
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(JSON.stringify({ imported, started }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { imported: boolean; started: boolean };
}

describe('chDB is loaded when an engine starts, not on import', () => {
  it('a process that imports the offline store and the stack but opens no engine does not carry the library', () => {
    expect(libraryMapped(['offline/index.ts', 'app/stack.ts', 'cli/cluster.ts'], false)).toEqual({ imported: false, started: false });
  });

  it('starting an engine loads it', () => {
    expect(libraryMapped(['offline/index.ts'], true)).toEqual({ imported: false, started: true });
  });
});
