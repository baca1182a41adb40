import type { TestProject } from 'vitest/node';
import { ensureBuilt } from './dist.js';
import { startPrivateRedis, removeDir } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** One private redis-server for the whole run; each test file isolates itself by key prefix. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureBuilt();
  const redis = await startPrivateRedis();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    removeDir(redis.dir);
  };
}
