import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';

/**
 * The watcher's script: `$1` the child's pid, `$2` tenths of a second between SIGTERM and SIGKILL.
 * It notes the child's start time (field 22 of /proc/<pid>/stat, read after the command name,
 * which may hold spaces and parentheses), waits for its stdin to close, and signals the child only
 * while the process with that pid still started then (a pid the kernel gave to another process is
 * left alone).
 */
const WATCH = `pid=$1
started() { sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20; }
start=$(started)
[ -n "$start" ] || exit 0
cat > /dev/null
alive() { [ "$(started)" = "$start" ]; }
alive || exit 0
kill -TERM "$pid" 2>/dev/null
left=$2
while [ "$left" -gt 0 ] && alive; do sleep 0.1; left=$((left - 1)); done
alive && kill -KILL "$pid" 2>/dev/null
exit 0`;

/**
 * Ends `child` when this process ends, however it ends (SIGKILL included), as the broker's
 * ParentWatch does for the JVM: a shell waits on a pipe from this process, which the kernel
 * closes when this process dies; the shell then sends the child SIGTERM, and SIGKILL after
 * `graceMs`. When the child exits first, the pipe is closed and the shell ends without signalling
 * anything. The shell has its own process group (a Ctrl-C at the terminal does not end it before
 * its work) and does not keep this process's event loop alive.
 */
export function tieToParent(child: ChildProcess, graceMs = 10_000): void {
  if (child.pid === undefined) return;
  const watcher = spawn('/bin/sh', ['-c', WATCH, 'sluice-child-watch', String(child.pid), String(Math.ceil(graceMs / 100))], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watcher.on('error', () => undefined);
  const pipe = watcher.stdin;
  pipe.on('error', () => undefined);
  // A child process's stdin pipe is a net.Socket, which can be unreferenced.
  if (pipe instanceof Socket) pipe.unref();
  watcher.unref();
  const release = (): void => {
    pipe.end();
  };
  if (child.exitCode !== null || child.signalCode !== null) release();
  else child.once('exit', release);
}
