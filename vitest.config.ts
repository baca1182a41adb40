import os from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'channels/**/*.test.ts', 'src/**/*.test.ts', 'workers/**/*.test.ts'],
    // The crash and fault suite has its own command (npm run test:reliability).
    exclude: [...configDefaults.exclude, 'test/reliability/**'],
    // Three files share two cores (below), so a test's time swings with what runs beside it: one that
    // takes 3.5 s alone has taken 21 s in CI. A hang still fails, a minute in.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Vitest's default is one worker per core less one: on a 2-core machine (CI's) that is a single
    // worker and the files run one after another. Most of a file's time is spent waiting (for send_at,
    // a rate window, a child process, Redis coming back), so three files at once keep both cores busy.
    maxWorkers: Math.max(3, os.availableParallelism() - 1),
  },
});
