import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { assertBindable, assertConfigBindable, authenticate, checkCredential, isLoopback } from './auth.js';
import { ConfigError } from './errors.js';

const request = (authorization?: string): http.IncomingMessage =>
  ({ headers: authorization === undefined ? {} : { authorization } }) as unknown as http.IncomingMessage;

describe('authentication', () => {
  const tokens = ['first-token-0123456789', 'second-token-0123456789'];

  it('is open without tokens, and needs one of them otherwise', () => {
    expect(checkCredential([], undefined)).toBe('open');
    expect(checkCredential(tokens, undefined)).toBe('missing');
    expect(checkCredential(tokens, 'second-token-0123456789')).toBe('ok');
    expect(checkCredential(tokens, 'second-token-012345678')).toBe('invalid');
    expect(checkCredential(tokens, '')).toBe('missing');
  });

  it('reads Bearer tokens and Basic passwords (any user name)', () => {
    expect(authenticate(request('Bearer first-token-0123456789'), tokens)).toBe('ok');
    expect(authenticate(request(`Basic ${Buffer.from('me:first-token-0123456789').toString('base64')}`), tokens)).toBe('ok');
    expect(authenticate(request(`Basic ${Buffer.from('first-token-0123456789').toString('base64')}`), tokens)).toBe('missing');
    expect(authenticate(request('Token first-token-0123456789'), tokens)).toBe('missing');
    expect(authenticate(request(), tokens)).toBe('missing');
  });
});

describe('binding', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])('%s is loopback', (host) => {
    expect(isLoopback(host)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', 'fe80::1'])('%s is not', (host) => {
    expect(isLoopback(host)).toBe(false);
  });

  it('refuses a non-loopback host without tokens, naming the settings', () => {
    expect(() => assertBindable('the registry', '0.0.0.0', [], 'SLUICE_SCHEMA_REGISTRY_HOST', 'SLUICE_REGISTRY_AUTH_TOKEN')).toThrow(
      ConfigError,
    );
    expect(() => assertBindable('the registry', '0.0.0.0', [], 'SLUICE_SCHEMA_REGISTRY_HOST', 'SLUICE_REGISTRY_AUTH_TOKEN')).toThrow(
      /refusing to serve the registry on 0\.0\.0\.0 \(SLUICE_SCHEMA_REGISTRY_HOST\) without authentication.*SLUICE_REGISTRY_AUTH_TOKEN/,
    );
    expect(() => assertBindable('the registry', '0.0.0.0', ['t'], 'X', 'Y')).not.toThrow();
    expect(() => assertBindable('the registry', '127.0.0.1', [], 'X', 'Y')).not.toThrow();
  });
});

describe('assertConfigBindable', () => {
  it('checks each surface a command serves, before anything starts', async () => {
    const { loadConfig } = await import('./config.js');
    const open = loadConfig({ SLUICE_SQL_HOST: '0.0.0.0' }, '/x');
    expect(() => assertConfigBindable(open, ['registry', 'ops'])).not.toThrow();
    expect(() => assertConfigBindable(open, ['sql'])).toThrow(/SLUICE_SQL_HOST/);
    const guarded = loadConfig(
      { SLUICE_SQL_HOST: '0.0.0.0', SLUICE_METRICS_HOST: '::', SLUICE_AUTH_TOKEN: 'a-token-of-16-chars-or-more' },
      '/x',
    );
    expect(() => assertConfigBindable(guarded, ['sql', 'registry', 'ops'])).not.toThrow();
  });
});
