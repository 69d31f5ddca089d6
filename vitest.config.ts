import { defineConfig } from 'vitest/config';

// GPU tests need VK_ICD_FILENAMES in each test process's real environment: the default `forks` pool gives
// every test file its own child process, and src/gpu/node-gpu.ts picks the ICD before Dawn starts.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['tests/**/*.test.ts', 'src/**/*.test.ts', 'signaling-server/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    fileParallelism: true,
  },
});
