import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../common/config.js';
import { launcherNodeFlags } from './launcher.js';

/** Node's flags before `bin/sluice.js` in a command line. */
function flagsBefore(command: readonly string[]): string[] {
  const at = command.indexOf('bin/sluice.js');
  if (command[0] !== 'node' || at < 0) throw new Error(`not a "node … bin/sluice.js" command: ${command.join(' ')}`);
  return command.slice(1, at);
}

describe('the sluice command', () => {
  const flags = launcherNodeFlags();

  it('reads the flags of a shebang, and refuses a first line that is not one', () => {
    expect(launcherNodeFlags('#!/usr/bin/env -S node --a=1 --b-c=64\nimport x;\n')).toEqual(['--a=1', '--b-c=64']);
    expect(launcherNodeFlags('#!/usr/bin/env -S node\n')).toEqual([]);
    expect(() => launcherNodeFlags('#!/usr/bin/env node --a=1\n')).toThrow(/does not start with/);
    expect(() => launcherNodeFlags('// no shebang\n')).toThrow(/does not start with/);
  });

  it('runs Node with the same flags from its shebang, npm start, npm run sluice and the Docker image', () => {
    expect(flags).toContain('--initial-old-space-size=512');
    const scripts = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    for (const name of ['start', 'sluice']) expect(flagsBefore((scripts[name] ?? '').split(' ')), name).toEqual(flags);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8'));
    expect(entrypoint, 'the Dockerfile has an ENTRYPOINT in exec form').not.toBeNull();
    expect(flagsBefore(JSON.parse((entrypoint as RegExpExecArray)[1] as string) as string[])).toEqual(flags);
  });
});
