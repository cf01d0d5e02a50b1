import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A started HTTP server: where it listens, and how to stop it (open connections included). */
export interface ListeningServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts `server` on host:port (0 = a free port), failing with the listen error (a taken port,
 * say) instead of crashing later. Malformed client traffic drops the socket, never the server.
 */
export async function listen(server: http.Server, host: string, port: number): Promise<ListeningServer> {
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
