import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';

/**
 * The Prometheus server binary: PROMETHEUS_BIN, else the one .ci/run unpacks from Debian's
 * `prometheus` package into .cache/prometheus (no service installed or started), else `prometheus`
 * on the PATH.
 */
export function prometheusBinary(): string {
  const candidates = [
    process.env.PROMETHEUS_BIN,
    path.join(PROJECT_ROOT, '.cache', 'prometheus', 'usr', 'bin', 'prometheus'),
    '/usr/bin/prometheus',
  ];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  throw new Error(
    'no Prometheus binary: run `apt-get download prometheus && dpkg-deb -x prometheus_*.deb .cache/prometheus` (as .ci/run does) or set PROMETHEUS_BIN',
  );
}

/**
 * Starts Prometheus under a shell that watches this process: if the test process dies, the shell
 * kills Prometheus within a second (Prometheus has no parent-death option of its own).
 */
export function startPrometheus(args: readonly string[], cwd: string): { child: ChildProcess; output: () => string } {
  const watchdog =
    'binary="$1"; shift; "$binary" "$@" & server=$!; ' +
    `while kill -0 ${process.pid} 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 1; done; ` +
    'kill $server 2>/dev/null; wait $server';
  const child = spawn('sh', ['-c', watchdog, 'prometheus-watchdog', prometheusBinary(), ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}
