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
  ])('rejects %j with a ConfigError', (env, message) => {
    expect(() => loadConfig(env, '/x')).toThrow(ConfigError);
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
