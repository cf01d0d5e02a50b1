import { describe, expect, it } from 'vitest';
import { kafkaSecurityConfig } from './client.js';

describe('kafkaSecurityConfig', () => {
  it('is empty without settings (plaintext, the local broker)', () => {
    expect(kafkaSecurityConfig(undefined)).toEqual({});
  });

  it('maps SASL and TLS settings to kafkajs options', () => {
    expect(
      kafkaSecurityConfig({
        sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
        tls: { rejectUnauthorized: false, ca: 'CA', cert: 'CERT', key: 'KEY' },
      }),
    ).toEqual({
      sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      ssl: { rejectUnauthorized: false, ca: ['CA'], cert: 'CERT', key: 'KEY' },
    });
    expect(kafkaSecurityConfig({ tls: { rejectUnauthorized: true } })).toEqual({ ssl: { rejectUnauthorized: true } });
  });
});
