import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'channels/**/*.test.ts', 'src/**/*.test.ts', 'workers/**/*.test.ts'],
    // The crash and fault suite has its own command (npm run test:reliability).
    exclude: [...configDefaults.exclude, 'test/reliability/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
  },
});
