import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { procStatSync } from './proc-stat.js';

/**
 * The watcher's script: `$1` the child's pid, `$2` its start time (field 22 of /proc/<pid>/stat),
 * `$3` tenths of a second between SIGTERM and SIGKILL. After its stdin closes it signals the pid
 * only while the process with that pid is the one that started then (a pid the kernel gave to
 * another process is left alone). The start time is read again after the command name, which may
 * hold spaces and parentheses.
 */
const WATCH = `pid=$1
start=$2
cat > /dev/null
alive() { [ "$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)" = "$start" ]; }
alive || exit 0
kill -TERM "$pid" 2>/dev/null
left=$3
while [ "$left" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; left=$((left - 1)); done
alive && kill -KILL "$pid" 2>/dev/null
exit 0`;

/**
 * Ends `child` when this process ends, however it ends (SIGKILL included), as the broker's
 * ParentWatch does for the JVM: a shell waits on a pipe from this process, which the kernel
 * closes when this process dies; the shell then sends the child SIGTERM, and SIGKILL after
 * `graceMs`. When the child exits first, the pipe is closed and the shell ends without signalling
 * anything. The shell has its own process group (a Ctrl-C at the terminal does not end it before
 * its work) and does not keep this process's event loop alive. Only the child is signalled, not
 * processes it started.
 */
export function tieToParent(child: ChildProcess, graceMs = 10_000): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // Read now, before this process's event loop can reap the child and free its pid.
  const started = procStatSync(child.pid)?.startTime;
  if (started === undefined) return;
  const watcher = spawn('/bin/sh', ['-c', WATCH, 'sluice-child-watch', String(child.pid), started, String(Math.ceil(graceMs / 100))], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watcher.on('error', () => undefined);
  const pipe = watcher.stdin;
  pipe.on('error', () => undefined);
  // A child process's stdin pipe is a net.Socket, which can be unreferenced.
  if (pipe instanceof Socket) pipe.unref();
  watcher.unref();
  child.once('exit', () => pipe.end());
}
