import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { waitUntil } from '../helpers.js';
import { tieToParent } from '../../common/child-tie.js';

/**
 * Runs the commands of a Markdown walkthrough as written, the way a reader types them: ```sh blocks
 * in order in one shell session (the working directory and exported variables carry over from block
 * to block), the `sluice up` block in the background as "another terminal", and blocks with a
 * `title="path"` written to that file. A ```text block after a command block is that command's
 * expected output.
 */
export interface CodeBlock {
  readonly lang: string;
  /** The file a block is the content of (`title="~/x/sluice.config.ts"`). */
  readonly title?: string;
  readonly text: string;
  /** Its first line in the Markdown file, for messages. */
  readonly line: number;
}

/** The fenced code blocks of a Markdown text, or of its `## <section>` only. */
export function codeBlocks(markdown: string, section?: string): CodeBlock[] {
  let lines = markdown.split('\n');
  let offset = 0;
  if (section !== undefined) {
    const start = lines.findIndex((line) => line === `## ${section}`);
    if (start === -1) throw new Error(`no section "## ${section}"`);
    const end = lines.findIndex((line, index) => index > start && line.startsWith('## '));
    offset = start;
    lines = lines.slice(start, end === -1 ? undefined : end);
  }
  const blocks: CodeBlock[] = [];
  for (let index = 0; index < lines.length; index++) {
    const open = /^```(\w+)(?:\s+title="([^"]+)")?\s*$/.exec(lines[index] ?? '');
    if (!open) continue;
    const close = lines.findIndex((line, at) => at > index && line === '```');
    if (close === -1) throw new Error(`unclosed code block at line ${offset + index + 1}`);
    blocks.push({
      lang: open[1] ?? '',
      ...(open[2] ? { title: open[2] } : {}),
      text: `${lines.slice(index + 1, close).join('\n')}\n`,
      line: offset + index + 1,
    });
    index = close;
  }
  return blocks;
}

/** Whether a shell block is the foreground `sluice up` (with or without npx in front). */
export function isUp(block: CodeBlock): boolean {
  const text = block.text.trim();
  return !text.includes('\n') && /(^|\s)sluice up(\s|$)/.test(text);
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

export class ShellSession {
  private readonly cwdFile: string;
  private readonly envFile: string;
  private readonly initial: string;
  private readonly background: { child: ChildProcess; exited: Promise<void> }[] = [];

  /** `stateDir` holds the session's working directory and exported variables between blocks. */
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    cwd: string,
    private readonly stateDir: string,
  ) {
    this.cwdFile = path.join(stateDir, 'cwd');
    this.envFile = path.join(stateDir, 'env.sh');
    this.initial = cwd;
  }

  async cwd(): Promise<string> {
    return existsSync(this.cwdFile) ? fs.readFile(this.cwdFile, 'utf8') : this.initial;
  }

  private async preamble(): Promise<string> {
    return [
      'set -euo pipefail',
      ...(existsSync(this.envFile) ? [`source ${quote(this.envFile)}`] : []),
      `cd ${quote(await this.cwd())}`,
    ].join('\n');
  }

  /** Runs a block to its end; the working directory and exports it leaves carry over. */
  async run(script: string, timeoutMs = 120_000): Promise<RunResult> {
    const full = `${await this.preamble()}\n${script}\nprintf '%s' "$PWD" > ${quote(this.cwdFile)}\nexport -p > ${quote(this.envFile)}\n`;
    const child = spawn('bash', ['-c', full], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    tieToParent(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  /** Runs a block again until `settled` accepts what it printed (the pipeline may still be catching up). */
  async runUntil(script: string, settled: (result: RunResult) => boolean, timeoutMs: number): Promise<RunResult> {
    let last: RunResult | undefined;
    try {
      await waitUntil(
        async () => {
          last = await this.run(script);
          return settled(last);
        },
        timeoutMs,
        `\`${script.trim()}\` to give what the walkthrough says`,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; it printed:\n${last?.stdout ?? ''}\n${last?.stderr ?? ''}`, { cause: error });
    }
    return last!;
  }

  /** Starts a long-running block (its own process group) and waits until its output matches `ready`. */
  async start(script: string, ready: RegExp, timeoutMs: number): Promise<{ output(): string }> {
    const child = spawn('bash', ['-c', `${await this.preamble()}\nexec ${script.trim()}`], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    tieToParent(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.background.push({ child, exited });
    await waitUntil(
      () => {
        if (child.exitCode !== null) throw new Error(`\`${script.trim()}\` exited: ${output.slice(-3_000)}`);
        return ready.test(output);
      },
      timeoutMs,
      `\`${script.trim()}\` to print ${ready}`,
    );
    return { output: () => output };
  }

  /** Writes a titled block to its file (`~` is the session's HOME; relative to the session's directory). */
  async writeFile(title: string, content: string): Promise<string> {
    const home = this.env.HOME ?? '/';
    const target = title.startsWith('~/') ? path.join(home, title.slice(2)) : path.resolve(await this.cwd(), title);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, content);
    return target;
  }

  /** Stops what `start` started (Ctrl-C to its process group), and SIGKILL after a minute. */
  async close(): Promise<void> {
    for (const { child, exited } of this.background.splice(0)) {
      const group = child.pid;
      if (child.exitCode === null && group !== undefined) {
        const signal = (name: NodeJS.Signals): void => {
          try {
            process.kill(-group, name);
          } catch {
            // gone already
          }
        };
        signal('SIGINT');
        const timer = setTimeout(() => signal('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
    }
    await fs.rm(this.stateDir, { recursive: true, force: true });
  }
}
