import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { isIP } from 'node:net';
import type { SluiceConfig } from './config.js';
import { ConfigError } from './errors.js';

/**
 * Bearer tokens for sluice's HTTP surfaces (SQL, schema registry, ops and /predict). A client
 * authenticates with `Authorization: Bearer <token>`, or with HTTP Basic auth carrying the token
 * as the password (any user name), which is what ClickHouse and Confluent clients send. Without
 * tokens a surface is open, which only a loopback address allows (`assertBindable`).
 */
export interface AuthTokens {
  readonly tokens: readonly string[];
}

export type AuthOutcome = 'open' | 'ok' | 'missing' | 'invalid';

/** The password of a `Basic` header or the token of a `Bearer` header; undefined without one. */
export function presentedCredential(request: http.IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (bearer !== undefined) return bearer;
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header)?.[1];
  if (basic === undefined) return undefined;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * Checks a presented credential against the tokens in constant time per token (digests of equal
 * length are compared, so neither content nor length leaks through timing).
 */
export function checkCredential(tokens: readonly string[], presented: string | undefined): AuthOutcome {
  if (tokens.length === 0) return 'open';
  if (presented === undefined || presented === '') return 'missing';
  const given = digest(presented);
  let match = false;
  for (const token of tokens) match = timingSafeEqual(digest(token), given) || match;
  return match ? 'ok' : 'invalid';
}

/** `checkCredential` for a request's Authorization header. */
export function authenticate(request: http.IncomingMessage, tokens: readonly string[]): AuthOutcome {
  return checkCredential(tokens, presentedCredential(request));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Whether clients on other machines cannot reach a server bound to this host. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Refuses to serve `surface` on a non-loopback address without tokens: anyone on the network
 * could use it otherwise. `setting` names the variable that chose the host, `tokenSetting` the
 * one that would configure tokens.
 */
export function assertBindable(surface: string, host: string, tokens: readonly string[], setting: string, tokenSetting: string): void {
  if (tokens.length > 0 || isLoopback(host)) return;
  throw new ConfigError(
    `refusing to serve ${surface} on ${host} (${setting}) without authentication: ${host} is reachable from other machines. ` +
      `Set ${tokenSetting} (or SLUICE_AUTH_TOKEN / SLUICE_AUTH_TOKEN_FILE) so that clients must present a token, or bind 127.0.0.1`,
    { context: { surface, host, setting } },
  );
}

/** The `WWW-Authenticate` challenge sent with a 401. */
export const AUTH_CHALLENGE = 'Bearer realm="sluice", Basic realm="sluice", charset="UTF-8"';

/**
 * `assertBindable` for the surfaces a command will serve, before it starts anything (a broker, a
 * stage): the refusal comes first and alone.
 */
export function assertConfigBindable(config: SluiceConfig, surfaces: readonly ('sql' | 'registry' | 'ops')[]): void {
  if (surfaces.includes('sql') && !config.clickhouse.url)
    assertBindable('the SQL endpoint', config.sql.host, config.auth.sql, 'SLUICE_SQL_HOST', 'SLUICE_SQL_AUTH_TOKEN');
  if (surfaces.includes('registry') && !config.schemaRegistry.externalUrl)
    assertBindable(
      'the schema registry',
      config.schemaRegistry.host,
      config.auth.registry,
      'SLUICE_SCHEMA_REGISTRY_HOST',
      'SLUICE_REGISTRY_AUTH_TOKEN',
    );
  if (surfaces.includes('ops'))
    assertBindable(
      '/metrics, /features and /predict',
      config.metrics.host,
      config.auth.ops,
      'SLUICE_METRICS_HOST',
      'SLUICE_OPS_AUTH_TOKEN',
    );
}
