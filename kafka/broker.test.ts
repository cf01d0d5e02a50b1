import { describe, expect, it } from 'vitest';
import { renderServerProperties } from './broker.js';

describe('renderServerProperties', () => {
  const properties = new Map(
    renderServerProperties({ port: 19092, controllerPort: 19093, dataDir: '/data/kafka' })
      .split('\n')
      .filter((line) => line.includes('=') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );

  it('runs one combined KRaft broker and controller on loopback', () => {
    expect(properties.get('process.roles')).toBe('broker,controller');
    expect(properties.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
    expect(properties.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(properties.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(properties.get('log.dirs')).toBe('/data/kafka');
  });

  it('gives internal topics one replica, so transactions and groups work on one node', () => {
    expect(properties.get('offsets.topic.replication.factor')).toBe('1');
    expect(properties.get('transaction.state.log.replication.factor')).toBe('1');
    expect(properties.get('transaction.state.log.min.isr')).toBe('1');
  });

  it('does not create topics on first use', () => {
    expect(properties.get('auto.create.topics.enable')).toBe('false');
  });

  it('throttles the log cleaner, which shares the machine with the stages', () => {
    expect(properties.get('log.cleaner.io.max.bytes.per.second')).toBe(String(64 * 1024 * 1024));
  });

  it('sizes the segment indexes to what a 256 MiB segment needs, not the 10 MiB default', () => {
    const indexBytes = Number(properties.get('log.index.size.max.bytes'));
    const segmentBytes = Number(properties.get('log.segment.bytes'));
    // One time-index entry (12 bytes) per 4,096 bytes of log at most: a full segment's index fits.
    expect(indexBytes).toBeGreaterThanOrEqual((segmentBytes / 4096) * 12);
    expect(indexBytes).toBeLessThan(10 * 1024 * 1024);
  });
});
