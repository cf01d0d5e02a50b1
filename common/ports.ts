import net from 'node:net';
import { PortInUseError } from './errors.js';

export const LOOPBACK = '127.0.0.1';

/** True when nothing listens on the port at 127.0.0.1 (we could bind it). */
export function isPortFree(port: number, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A port the kernel says is free now on 127.0.0.1. */
export function freePort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Chooses a port: the configured one (which must be free), else the one used last time if it is
 * still free (so clients keep working across restarts), else any free port.
 */
export async function choosePort(
  configured: number,
  previous: number | undefined,
  setting: string,
  avoid: readonly number[] = [],
): Promise<number> {
  if (configured !== 0) {
    if (!(await isPortFree(configured))) throw new PortInUseError(configured, setting);
    return configured;
  }
  if (previous !== undefined && !avoid.includes(previous) && (await isPortFree(previous))) return previous;
  for (;;) {
    const port = await freePort();
    if (!avoid.includes(port)) return port;
  }
}
