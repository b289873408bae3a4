import { defineConfig } from 'vitest/config';

// Integration tests start real servers (ZooKeeper, a Kafka-protocol broker), so they get generous
// timeouts; files run in parallel on separate ports and temp dirs.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
