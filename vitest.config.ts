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
          testTimeout: 10_000,
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
