import http from 'node:http';
import type { Logger } from 'pino';
import { assertBindable, authenticate, AUTH_CHALLENGE } from '../../common/auth.js';
import { listen, type ListeningServer, readBody } from '../../common/http.js';
import { SchemaRegistryError } from '../errors.js';
import type { SchemaRegistryService } from './service.js';

/** Confluent's media types; JSON and octet-stream are accepted as well, as Confluent does. */
const RESPONSE_TYPE = 'application/vnd.schemaregistry.v1+json';
const ACCEPTED_TYPES = new Set([
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
  'application/json',
  'application/octet-stream',
]);
export const MAX_BODY_BYTES = 1024 * 1024;

interface Request {
  readonly method: string;
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/** The `*` segments of the path, in order ('' where the route has fewer). */
type Params = readonly [first: string, second: string];
type Handler = (request: Request, params: Params) => unknown;

interface Route {
  readonly method: string;
  /** Path segments; `*` matches one segment, which is passed to the handler decoded. */
  readonly pattern: readonly string[];
  readonly handler: Handler;
  /** Changes the registry (registrations, deletes, config): needs a token when tokens are set. */
  readonly mutates: boolean;
}

const flag = (query: URLSearchParams, name: string): boolean => query.get(name) === 'true';

function routes(service: SchemaRegistryService): Route[] {
  const route = (method: string, path: string, handler: Handler): Route => ({
    method,
    pattern: path.split('/').filter(Boolean),
    handler,
    // Lookups (POST /subjects/{s}) and compatibility checks (POST /compatibility/...) only read.
    mutates: method === 'PUT' || method === 'DELETE' || (method === 'POST' && path.endsWith('/versions') && path.startsWith('/subjects/')),
  });
  return [
    route('GET', '/', () => ({})),
    route('GET', '/schemas/types', () => ['AVRO']),
    route('GET', '/schemas/ids/*', (_request, [id]) => service.schemaById(id)),
    route('GET', '/schemas/ids/*/schema', (_request, [id]) => JSON.parse(service.schemaById(id).schema) as unknown),
    route('GET', '/schemas/ids/*/versions', ({ query }, [id]) => service.subjectVersionsOfId(id, flag(query, 'deleted'))),
    route('GET', '/subjects', ({ query }) => service.subjects(flag(query, 'deleted'), query.get('subjectPrefix') ?? '')),
    route('POST', '/subjects/*', ({ query, body }, [subject]) => service.lookup(subject, asObject(body), flag(query, 'deleted'))),
    route('DELETE', '/subjects/*', ({ query }, [subject]) =>
      service.deleteSubject(subject, flag(query, 'permanent'), flag(query, 'force')),
    ),
    route('GET', '/subjects/*/versions', ({ query }, [subject]) => service.versions(subject, flag(query, 'deleted'))),
    route('POST', '/subjects/*/versions', ({ body }, [subject]) => service.register(subject, asObject(body))),
    route('GET', '/subjects/*/versions/*', ({ query }, [subject, version]) => service.version(subject, version, flag(query, 'deleted'))),
    route(
      'GET',
      '/subjects/*/versions/*/schema',
      ({ query }, [subject, version]) => JSON.parse(service.version(subject, version, flag(query, 'deleted')).schema) as unknown,
    ),
    route('DELETE', '/subjects/*/versions/*', ({ query }, [subject, version]) =>
      service.deleteVersion(subject, version, flag(query, 'permanent'), flag(query, 'force')),
    ),
    route('GET', '/config', () => service.globalConfig()),
    route('PUT', '/config', ({ body }) => service.setConfig(null, body)),
    route('DELETE', '/config', () => service.deleteConfig(null)),
    route('GET', '/config/*', ({ query }, [subject]) => service.subjectConfig(subject, flag(query, 'defaultToGlobal'))),
    route('PUT', '/config/*', ({ body }, [subject]) => service.setConfig(subject, body)),
    route('DELETE', '/config/*', (_request, [subject]) => service.deleteConfig(subject)),
    route('POST', '/compatibility/subjects/*/versions', ({ query, body }, [subject]) =>
      compatibility(service, subject, undefined, body, query),
    ),
    route('POST', '/compatibility/subjects/*/versions/*', ({ query, body }, [subject, version]) =>
      compatibility(service, subject, version, body, query),
    ),
  ];
}

function compatibility(
  service: SchemaRegistryService,
  subject: string,
  version: string | undefined,
  body: unknown,
  query: URLSearchParams,
): unknown {
  const result = service.testCompatibility(subject, version, asObject(body));
  return flag(query, 'verbose') ? result : { is_compatible: result.is_compatible };
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new SchemaRegistryError(42201, 'Invalid schema: the request body must be a JSON object such as {"schema": "..."}');
  }
  return body as Record<string, unknown>;
}

export interface RegistryServerOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Tokens that authorize changes (registrations, deletes, config): `Authorization: Bearer` or
   * Basic with the token as the password, as Confluent clients send. Reads stay open. None: open,
   * which only a loopback host allows.
   */
  readonly tokens?: readonly string[];
  readonly logger: Logger;
}

export type RegistryServer = ListeningServer;

/**
 * Serves the Confluent REST API over node:http. Every failure becomes an error response with
 * Confluent's body (`{"error_code": 40401, "message": ...}`); nothing a client sends can crash it.
 */
export async function serveRegistry(service: SchemaRegistryService, options: RegistryServerOptions): Promise<RegistryServer> {
  const table = routes(service);
  const { logger } = options;
  const tokens = options.tokens ?? [];
  assertBindable('the schema registry', options.host, tokens, 'SLUICE_SCHEMA_REGISTRY_HOST', 'SLUICE_REGISTRY_AUTH_TOKEN');
  const server = http.createServer((incoming, outgoing) => {
    handle(table, incoming, logger, tokens)
      .then(({ status, body }) => send(outgoing, status, body, status === 401 ? { 'WWW-Authenticate': AUTH_CHALLENGE } : {}))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'schema registry request failed unexpectedly');
        send(outgoing, 500, { error_code: 500, message: 'Internal Server Error' });
      });
  });
  return listen(server, options.host, options.port);
}

async function handle(
  table: readonly Route[],
  incoming: http.IncomingMessage,
  logger: Logger,
  tokens: readonly string[],
): Promise<{ status: number; body: unknown }> {
  try {
    const url = new URL(incoming.url ?? '/', 'http://registry');
    const segments = url.pathname
      .split('/')
      .filter(Boolean)
      .map((segment) => decodeURIComponent(segment));
    const method = incoming.method ?? 'GET';
    const candidates = table.filter((route) => matches(route.pattern, segments));
    const route = candidates.find((candidate) => candidate.method === method);
    if (!route) {
      await drain(incoming);
      return candidates.length > 0
        ? { status: 405, body: { error_code: 405, message: 'HTTP 405 Method Not Allowed' } }
        : { status: 404, body: { error_code: 404, message: 'HTTP 404 Not Found' } };
    }
    if (route.mutates) {
      const outcome = authenticate(incoming, tokens);
      if (outcome === 'missing' || outcome === 'invalid') {
        await drain(incoming);
        return {
          status: 401,
          body: {
            error_code: 401,
            message:
              outcome === 'missing'
                ? 'Unauthorized: changes to this registry need a token (Authorization: Bearer <token>, or Basic auth with the token as the password)'
                : 'Unauthorized: the token is not valid',
          },
        };
      }
    }
    const body = method === 'POST' || method === 'PUT' ? await readJsonBody(incoming) : await drain(incoming);
    const wildcards = route.pattern.flatMap((part, index) => (part === '*' ? [segments[index] ?? ''] : []));
    const params: Params = [wildcards[0] ?? '', wildcards[1] ?? ''];
    const result = await route.handler({ method, segments, query: url.searchParams, body }, params);
    return { status: 200, body: result };
  } catch (error) {
    if (error instanceof SchemaRegistryError) {
      if (error.httpStatus >= 500) logger.error({ err: error }, 'schema registry error');
      return { status: error.httpStatus, body: { error_code: error.errorCode, message: error.message } };
    }
    if (error instanceof URIError)
      return { status: 400, body: { error_code: 400, message: 'Bad Request: malformed percent-encoding in the path' } };
    throw error;
  }
}

function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  return pattern.length === segments.length && pattern.every((part, index) => part === '*' || part === segments[index]);
}

async function drain(incoming: http.IncomingMessage): Promise<undefined> {
  incoming.resume();
  await new Promise<void>((resolve) => {
    if (incoming.readableEnded) resolve();
    else incoming.once('end', resolve).once('error', () => resolve());
  });
  return undefined;
}

async function readJsonBody(incoming: http.IncomingMessage): Promise<unknown> {
  const contentType = (incoming.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const body = await readBody(incoming, MAX_BODY_BYTES);
  if (body === undefined) throw new SchemaRegistryError(413, `Request body exceeds ${MAX_BODY_BYTES} bytes`);
  if (!ACCEPTED_TYPES.has(contentType)) {
    throw new SchemaRegistryError(415, `HTTP 415 Unsupported Media Type: send ${RESPONSE_TYPE} or application/json`);
  }
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new SchemaRegistryError(400, `Unrecognized JSON in the request body: ${(cause as Error).message}`, { cause });
  }
}

function send(outgoing: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  if (outgoing.headersSent) return;
  const payload = JSON.stringify(body);
  outgoing.writeHead(status, { 'Content-Type': RESPONSE_TYPE, 'Content-Length': Buffer.byteLength(payload), ...headers });
  outgoing.end(payload);
}
