import { defineConfig } from 'vitest/config';

/** `npm run test:reliability`: the crash and fault suite (test/reliability/), run one file at a time. */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
  },
});
