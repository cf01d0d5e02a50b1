import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** Connections the kernel may hold for accept() (capped by net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

/** A started HTTP server: where it listens, and how to stop it (open connections included). */
export interface ListeningServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts `server` on host:port (0 = a free port), failing with the listen error (a taken port,
 * say) instead of crashing later. Malformed client traffic drops the socket, never the server.
 * The accept backlog is large (Node's default, 511, drops the SYNs of a thousand clients that
 * connect at once, and each then waits 1, 3, 7 s for the kernel's retransmissions).
 */
export async function listen(server: http.Server, host: string, port: number): Promise<ListeningServer> {
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A request's whole body, or undefined when it exceeds `limit` bytes (by its Content-Length or
 * as it arrives); the rest of an oversized body is drained so the connection can answer 413.
 */
export function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > limit) {
    request.resume();
    return Promise.resolve(undefined);
  }
  // Events rather than an async iterator: this runs for every request of /predict under load.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        request.removeListener('data', onData);
        request.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(size > limit ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

/** An HTTP agent whose connections go to a Unix socket (the URL's host is then only a name). */
export function unixSocketAgent(socketPath: string): http.Agent {
  const agent = new http.Agent({ keepAlive: true });
  // Node's agent uses the socket createConnection returns (and ignores its callback then).
  (agent as unknown as { createConnection: () => net.Socket }).createConnection = () => net.createConnection(socketPath);
  return agent;
}

/** A path segment, percent-decoded; undefined when its encoding is malformed (answer 400). */
export function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
