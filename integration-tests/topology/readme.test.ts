import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { cleanEnv } from '../cli/sluice-process.js';
import { codeBlocks, isUp, ShellSession, type RunResult } from './markdown-commands.js';

/**
 * The README's "Your own data" walkthrough, run as written: every command in it, in order, in one
 * shell (HOME is a temporary folder, so `~/deliveries` is created there), the files it shows written
 * where it says, and each printed output it shows compared with what the command prints.
 */
const SECTION = 'Your own data';

/** Commands that read what the pipeline has produced so far: run again until they give what the README shows (or exit 0). */
const CATCHING_UP = /sluice (features get|features check|sql)/;

describe(`README: ${SECTION}`, () => {
  let session: ShellSession | undefined;
  let home: string | undefined;

  afterAll(async () => {
    await session?.close();
    if (home) await fs.rm(home, { recursive: true, force: true });
  });

  it('works as written, from `sluice init` to SQL, backfill and check', async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-readme-'));
    const state = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-readme-shell-'));
    session = new ShellSession(cleanEnv({ SLUICE_TOPOLOGY: undefined, HOME: home, SLUICE_LOG_LEVEL: 'warn' }), PROJECT_ROOT, state);
    const blocks = codeBlocks(readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8'), SECTION);
    expect(blocks.filter((block) => block.lang === 'sh').length).toBeGreaterThanOrEqual(7);
    expect(blocks.filter(isUp)).toHaveLength(1);

    const ran: string[] = [];
    for (const [index, block] of blocks.entries()) {
      if (block.title) {
        await session.writeFile(block.title, block.text);
        continue;
      }
      if (block.lang === 'text') continue; // compared with the block before it
      expect(block.lang, `README.md:${block.line}`).toBe('sh');
      if (isUp(block)) {
        await session.start(block.text, /sluice is up/, 150_000);
        continue;
      }
      const shown = blocks[index + 1]?.lang === 'text' ? blocks[index + 1]?.text : undefined;
      const settled = (result: RunResult): boolean =>
        result.code === 0 && (shown === undefined || normalize(result.stdout) === normalize(shown));
      const result = CATCHING_UP.test(block.text) ? await session.runUntil(block.text, settled, 60_000) : await session.run(block.text);
      expect(result.code, `README.md:${block.line} \`${block.text.trim()}\` failed: ${result.stderr}`).toBe(0);
      if (shown !== undefined) expect(normalize(result.stdout), `README.md:${block.line}`).toBe(normalize(shown));
      ran.push(`${block.text.trim()}\n${result.stdout}`);
    }
    process.stdout.write(`${ran.join('\n')}\n`);

    // What the walkthrough built is where it says: the project, and the stack's data in it.
    const project = path.join(home, 'deliveries');
    expect((await fs.readdir(project)).sort()).toEqual(['.sluice', 'README.md', 'data', 'schemas', 'sluice.config.ts']);
    expect(ran.find((text) => text.startsWith('sluice produce'))).toContain('sent 12 records to raw.deliveries');
    expect(ran.find((text) => text.startsWith('sluice backfill'))).toMatch(/: 12 events → 12 rows \(0 new, 12 already there\)/);
    expect(ran.find((text) => text.startsWith('sluice backfill'))).toMatch(/features check[\s\S]*mismatch rate 0\n$/);
  });
});

/** Output as compared: trailing spaces and blank lines at the end do not count. */
function normalize(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .trim();
}
