import { spawn } from 'node:child_process';
import os from 'node:os';
import { inject } from 'vitest';
import type { Config } from '../../src/config.js';
import { campaignKeys, saveNewCampaign } from '../../src/domain/campaigns.js';
import type { RedisHandle } from '../../src/redis/connection.js';
import { collectorDefinition } from '../../workers/collect/registry.js';
import { runCollector, type CollectDeps } from '../../workers/collect/run.js';
import type { CollectResult } from '../../workers/collect/types.js';
import { CLI_JS } from './dist.js';
import { silentLogger } from './context.js';

/** A campaign that sent one post on `channel` (as the deliver worker records it: `<channel>:-` → post id). */
export async function seedSentPost(handle: RedisHandle, prefix: string, channel: string, postId: string, sendAt: Date): Promise<string> {
  const c = await saveNewCampaign(
    handle.redis,
    prefix,
    { title: `post ${postId}`, kind: 'social', sendAt, timezone: 'Europe/London', essential: false, channels: { [channel]: { text: `post ${postId}` } } },
    'sent',
    'tester',
    sendAt,
  );
  await handle.redis.hset(campaignKeys(prefix, c.id).sent, `${channel}:-`, postId);
  return c.id;
}

/** Runs one collector in-process against the test's Redis, as the worker would. */
export function collectOnce(config: Config, handle: RedisHandle, source: string, deps: Partial<CollectDeps> = {}): Promise<CollectResult> {
  const def = collectorDefinition(source);
  if (!def) throw new Error(`no collector ${source}`);
  return runCollector(def, { config, redis: handle.redis, log: silentLogger(), ...deps });
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built `crier` command in a child process, on the run's private Redis with the test's config. */
export function runCrier(config: Config, args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: inject('redisUrl'),
    CRIER_CONFIG: config.configFile,
    CRIER_DATA_DIR: config.dataDir,
    CRIER_SECRET: 'test-secret-0123456789abcdef',
    CRIER_USER: 'tester',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI_JS, ...args], { cwd: os.tmpdir(), env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Polls `check` until it returns a value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
