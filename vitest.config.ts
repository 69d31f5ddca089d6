import { defineConfig } from 'vitest/config';

// Where tests live (tests/README.md):
//  - pure TypeScript units (no GPU, no network socket, no browser) beside their code: src/**/x.test.ts,
//    signaling-server/**/x.test.ts, tests/support/x.test.ts;
//  - GPU, network and browser suites under tests/<area>/.
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
