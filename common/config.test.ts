import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig, parseBrokers, PROJECT_ROOT } from './config.js';

describe('loadConfig', () => {
  it('fills every default from an empty environment', () => {
    const config = loadConfig({}, '/work/app');
    expect(config.dataDir).toBe('/work/app/.sluice');
    expect(config.cacheDir).toBe(path.join(PROJECT_ROOT, '.cache'));
    expect(config.logLevel).toBe('info');
    expect(config.topicPrefix).toBe('');
    expect(config.defaultPartitions).toBe(6);
    expect(config.stages).toEqual({
      guarantee: 'exactly_once',
      maxInFlight: 20_000,
      commitIntervalMs: 100,
      stateCacheMaxBytes: 128 * 1024 * 1024,
      fetchMinBytes: 1024 * 1024,
      fetchMaxWaitMs: 50,
    });
    expect(config.kafka).toEqual({
      externalBrokers: undefined,
      version: '4.4.0',
      port: 0,
      controllerPort: 0,
      heap: '512m',
      startTimeoutMs: 90_000,
      stopTimeoutMs: 20_000,
      javaHome: undefined,
    });
  });

  it('reads every variable it knows, resolving paths against the working directory', () => {
    const config = loadConfig(
      {
        SLUICE_DATA_DIR: 'state',
        SLUICE_KAFKA_PORT: '9092',
        SLUICE_TOPIC_PREFIX: 'staging.',
        KAFKA_BROKERS: 'a:9092, b:9093',
        JAVA_HOME: '/opt/jdk',
      },
      '/srv',
    );
    expect(config.dataDir).toBe('/srv/state');
    expect(config.kafka.port).toBe(9092);
    expect(config.topicPrefix).toBe('staging.');
    expect(config.kafka.externalBrokers).toEqual(['a:9092', 'b:9093']);
    expect(config.kafka.javaHome).toBe('/opt/jdk');
  });

  it('ignores variables outside its namespace and treats empty values as unset', () => {
    expect(loadConfig({ HOME: '/root', PATH: '/bin', SLUICE_DATA_DIR: '' }, '/x').dataDir).toBe('/x/.sluice');
  });

  it('returns a frozen object', () => {
    const config = loadConfig({}, '/x');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.kafka)).toBe(true);
  });

  it.each([
    [{ SLUICE_DATADIR: '/x' }, /unknown setting SLUICE_DATADIR/],
    [{ SLUICE_KAFKA_PORT: '70000' }, /SLUICE_KAFKA_PORT/],
    [{ SLUICE_KAFKA_PORT: 'abc' }, /SLUICE_KAFKA_PORT/],
    [{ SLUICE_LOG_LEVEL: 'loud' }, /SLUICE_LOG_LEVEL/],
    [{ SLUICE_KAFKA_HEAP: 'lots' }, /SLUICE_KAFKA_HEAP/],
    [{ SLUICE_TOPIC_PREFIX: 'bad prefix' }, /SLUICE_TOPIC_PREFIX/],
    [{ KAFKA_BROKERS: 'localhost' }, /KAFKA_BROKERS: "localhost" is not host:port/],
    [{ KAFKA_BROKERS: ' , ' }, /KAFKA_BROKERS: no brokers listed/],
    [{ SLUICE_FETCH_MAX_WAIT_MS: '30000' }, /SLUICE_FETCH_MAX_WAIT_MS/],
    [{ SLUICE_FETCH_MIN_BYTES: '0' }, /SLUICE_FETCH_MIN_BYTES/],
  ])('rejects %j with a ConfigError', (env, message) => {
    expect(() => loadConfig(env, '/x')).toThrow(ConfigError);
    expect(() => loadConfig(env, '/x')).toThrow(message);
  });
});

describe('security settings', () => {
  it('has no tokens, no Kafka security and the default SQL limits by default', () => {
    const config = loadConfig({}, '/x');
    expect(config.auth).toEqual({ sql: [], registry: [], ops: [] });
    expect(config.kafka.security).toBeUndefined();
    expect(config.sql.limits).toEqual({
      maxExecutionTimeS: 30,
      maxResultRows: 1_000_000,
      maxResultBytes: 256 * 1024 * 1024,
      maxMemoryBytes: 2 * 1024 * 1024 * 1024,
      maxConcurrentQueries: 1,
    });
    expect(loadConfig({ UV_THREADPOOL_SIZE: '16' }, '/x').sql.limits.maxConcurrentQueries).toBe(13);
  });

  it('reads tokens per surface, falling back to the shared ones; a file holds one per line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-config-'));
    fs.writeFileSync(path.join(dir, 'tokens'), '# rotation\nshared-file-token-0123456789\n\nshared-file-token-abcdefghij\n');
    try {
      const config = loadConfig(
        { SLUICE_AUTH_TOKEN_FILE: 'tokens', SLUICE_SQL_AUTH_TOKEN: 'sql-only-token-0123456789', SLUICE_SQL_MAX_EXECUTION_TIME: '5' },
        dir,
      );
      expect(config.auth.sql).toEqual(['sql-only-token-0123456789']);
      expect(config.auth.registry).toEqual(['shared-file-token-0123456789', 'shared-file-token-abcdefghij']);
      expect(config.auth.ops).toEqual(config.auth.registry);
      expect(config.sql.limits.maxExecutionTimeS).toBe(5);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds SASL and TLS settings for an external cluster', () => {
    const config = loadConfig(
      {
        KAFKA_BROKERS: 'kafka:9093',
        SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        SLUICE_KAFKA_SASL_USERNAME: 'sluice',
        SLUICE_KAFKA_SASL_PASSWORD: 'pw',
        SLUICE_KAFKA_TLS: 'true',
      },
      '/x',
    );
    expect(config.kafka.security).toEqual({
      sasl: { mechanism: 'scram-sha-512', username: 'sluice', password: 'pw' },
      tls: { rejectUnauthorized: true },
    });
  });

  it.each([
    [{ SLUICE_AUTH_TOKEN: 'short' }, /SLUICE_AUTH_TOKEN: at least 16 characters/],
    [{ SLUICE_OPS_AUTH_TOKEN_FILE: '/no/such/file' }, /SLUICE_OPS_AUTH_TOKEN_FILE: cannot read \/no\/such\/file/],
    [{ SLUICE_SQL_WRITABLE: 'true' }, /SLUICE_SQL_WRITABLE: users' writes through the SQL endpoint were removed/],
    [
      { SLUICE_SQL_MAX_CONCURRENT_QUERIES: '4' },
      /SLUICE_SQL_MAX_CONCURRENT_QUERIES: .* 4 libuv threads .* at most 1; start the process with a larger UV_THREADPOOL_SIZE/,
    ],
    [{ SLUICE_KAFKA_SASL_MECHANISM: 'plain', KAFKA_BROKERS: 'k:1' }, /needs SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD/],
    [{ SLUICE_KAFKA_SASL_MECHANISM: 'plain', SLUICE_KAFKA_SASL_USERNAME: 'u', SLUICE_KAFKA_SASL_PASSWORD: 'p' }, /set KAFKA_BROKERS too/],
    [{ SLUICE_KAFKA_TLS_CA_FILE: '/ca.pem', KAFKA_BROKERS: 'k:1' }, /need SLUICE_KAFKA_TLS=true/],
    [{ SLUICE_KAFKA_SASL_MECHANISM: 'gssapi' }, /SLUICE_KAFKA_SASL_MECHANISM/],
  ])('rejects %j', (env, message) => {
    expect(() => loadConfig(env, '/x')).toThrow(message);
  });
});

describe('parseBrokers', () => {
  it('accepts host:port lists, IPv6 brackets included', () => {
    expect(parseBrokers('[::1]:9092,kafka-0.svc:19092')).toEqual(['[::1]:9092', 'kafka-0.svc:19092']);
  });

  it.each(['host:', ':9092', 'host:0', 'host:99999', 'host:12a'])('rejects %s', (value) => {
    expect(() => parseBrokers(value)).toThrow(/is not host:port/);
  });
});
