import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './integration-tests/setup/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['node_modules/**', 'integration-tests/**', '.cache/**', '.sluice/**', '.scratch/**', 'dist/**', 'dist.building-*/**'],
          // A hang guard, not a speed check: in CI the unit tests share two cores with the broker
          // and the integration tests, and the longest (real RocksDB, thousands of events) took
          // 9 s here alone and over 10 s there.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['integration-tests/**/*.test.ts'],
          globalSetup: ['integration-tests/setup/broker.ts'],
          // One broker, two cores: test files take turns.
          fileParallelism: false,
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
