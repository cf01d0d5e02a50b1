import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { cleanEnv, runSluice } from '../cli/sluice-process.js';
import { codeBlocks, isUp, ShellSession, type RunResult } from './markdown-commands.js';

/**
 * `sluice init <dir>`: the project it writes runs as its README says — the README's commands
 * (`npx --prefix <this checkout> sluice ...`) run as written from the project folder — and a second
 * init overwrites nothing.
 */
const FILES = ['README.md', 'data/orders.csv', 'schemas/raw.orders.avsc', 'sluice.config.ts'];

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('sluice init', () => {
  let root: string | undefined;
  let session: ShellSession | undefined;

  afterAll(async () => {
    await session?.close();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('writes a project and refuses to overwrite any of its files', async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-init-'));
    const env = cleanEnv({ SLUICE_TOPOLOGY: undefined });
    const created = await runSluice(['init', 'shop'], env, 60_000, root);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const project = path.join(root, 'shop');
    expect(await listFiles(project)).toEqual(FILES);
    expect(await fs.readFile(path.join(project, 'README.md'), 'utf8')).toContain(`npx --prefix ${PROJECT_ROOT} sluice up --topology .`);
    const before = await Promise.all(FILES.map((file) => fs.readFile(path.join(project, file), 'utf8')));

    await fs.writeFile(path.join(project, 'sluice.config.ts'), '// mine\n');
    const again = await runSluice(['init', 'shop'], env, 60_000, root);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/sluice: .*shop\/sluice\.config\.ts, .*shop\/README\.md.* exist already; sluice init overwrites nothing/s);
    expect(await fs.readFile(path.join(project, 'sluice.config.ts'), 'utf8')).toBe('// mine\n');
    await fs.writeFile(path.join(project, 'sluice.config.ts'), before[FILES.indexOf('sluice.config.ts')]!);

    // One file in the way is enough to write nothing at all.
    const other = path.join(root, 'other');
    await fs.mkdir(other);
    await fs.writeFile(path.join(other, 'README.md'), '# mine\n');
    const blocked = await runSluice(['init', 'other'], env, 60_000, root);
    expect(blocked.code).toBe(1);
    expect(await listFiles(other)).toEqual(['README.md']);
    expect(await fs.readFile(path.join(other, 'README.md'), 'utf8')).toBe('# mine\n');
  });

  it("runs as its README says, with this checkout's sluice", async () => {
    const project = path.join(root!, 'shop');
    const readme = await fs.readFile(path.join(project, 'README.md'), 'utf8');
    const commands = codeBlocks(readme).filter((block) => block.lang === 'sh');
    expect(commands.filter(isUp)).toHaveLength(1);
    const state = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-init-shell-'));
    session = new ShellSession(cleanEnv({ SLUICE_TOPOLOGY: undefined, SLUICE_LOG_LEVEL: 'warn' }), project, state);

    // What the sample data gives, by hand: customer-1 ordered 42.50, 7.25, 64.00 and 12.00 (9 items).
    const expectations: [RegExp, (result: RunResult) => boolean][] = [
      [/sluice produce orders data\/orders\.csv/, (result) => result.stdout.includes('sent 12 records to raw.orders')],
      [
        /sluice features get customer_spend_30d customer-1/,
        (result) => {
          const found = JSON.parse(result.stdout || '{}') as { status?: string; values?: Record<string, number> };
          return found.status === 'PRESENT' && found.values?.amount_max === 64 && found.values.items === 9;
        },
      ],
      [/FROM events_orders/, (result) => /customer-1\s+│\s+4\s+│\s+125\.75/.test(result.stdout)],
      [/FROM features_customer_orders_1h/, (result) => (result.stdout.match(/customer-/g) ?? []).length === 12],
    ];
    for (const block of commands) {
      if (isUp(block)) {
        await session.start(block.text, /sluice is up/, 150_000);
        continue;
      }
      const expected = expectations.find(([pattern]) => pattern.test(block.text));
      expect(expected, `an expectation for \`${block.text.trim()}\``).toBeDefined();
      const result = await session.runUntil(block.text, (run) => run.code === 0 && expected![1](run), 60_000);
      expect(result.code).toBe(0);
    }
  });
});
