import { fork } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { TwitterApi } from 'twitter-api-v2';
import { apiBasePlugin } from '../channels/twitter/api-base.js';
import { campaignKeys, saveNewCampaign } from '../src/domain/campaigns.js';
import { createLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { xCollector } from '../workers/collect/x.js';
import { runCollector } from '../workers/collect/run.js';
import { arg, benchConfig, startRedis } from './lib.js';

/**
 * X collector at scale: metrics of N posts Crier sent (default 2,000, all
 * under 30 days old) must take at most 2 calls per 100 posts plus the account
 * (41 for 2,000). The fake X API (HTTPS, OAuth 1.0a checked) runs in its own
 * process and counts the requests it receives. Baseline: the same 41 requests
 * made by a bare twitter-api-v2 loop with nothing stored; runs alternate,
 * medians reported.
 *
 *   npm run build && node dist/bench/collect-x.js [--n 2000] [--runs 3]
 */

const log = createLogger('silent');
const creds = { appKey: 'bk', appSecret: 'bs', accessToken: 'bt', accessSecret: 'bx' };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Ready {
  url: string;
  certFile: string;
  ca: string;
}

async function main(): Promise<void> {
  const n = arg('n', 2000);
  const runs = arg('runs', 3);
  const child = fork(path.join(import.meta.dirname, 'fake-x-process.js'), [String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<Ready>((resolve) => child.once('message', (m) => resolve(m as Ready)));
  const count = () => new Promise<{ requests: number; paths: string[] }>((resolve) => {
    child.once('message', (m) => resolve(m as { requests: number; paths: string[] }));
    child.send('count');
  });
  const redis = await startRedis();
  try {
    const config = benchConfig({ REDIS_URL: redis.url, TWITTER_API_BASE: ready.url, TWITTER_APP_KEY: creds.appKey, TWITTER_APP_SECRET: creds.appSecret, TWITTER_ACCESS_TOKEN: creds.accessToken, TWITTER_ACCESS_SECRET: creds.accessSecret });
    const handle = await connectRedis(config, log);
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const sendAt = new Date(now - (i % 28) * 86_400_000 - 3_600_000);
      const c = await saveNewCampaign(handle.redis, config.redis_prefix, { title: `post ${i}`, kind: 'social', sendAt, timezone: 'Europe/London', essential: false, channels: { twitter: { text: `post ${i}` } } }, 'sent', 'bench', sendAt);
      await handle.redis.hset(campaignKeys(config.redis_prefix, c.id).sent, 'twitter:-', String(1_900_000_000_000_000_000n + BigInt(i)));
    }
    const crier: number[] = [];
    const bare: number[] = [];
    let calls = 0;
    let observations = 0;
    for (let r = 0; r < runs; r++) {
      const before = (await count()).requests;
      let t = performance.now();
      const result = await runCollector(xCollector, { config, redis: handle.redis, log, collectorOptions: { ca: ready.ca } });
      crier.push(performance.now() - t);
      calls = (await count()).requests - before;
      observations = result.observations;

      const agent = new https.Agent({ keepAlive: true, ca: ready.ca });
      const client = new TwitterApi(creds, { httpAgent: agent, plugins: [apiBasePlugin(ready.url)] });
      const ids = Array.from({ length: n }, (_, i) => String(1_900_000_000_000_000_000n + BigInt(i)));
      t = performance.now();
      await client.v2.me({ 'user.fields': ['public_metrics'] });
      for (let i = 0; i < n; i += 100) await client.v2.tweets(ids.slice(i, i + 100), { 'tweet.fields': ['public_metrics', 'created_at'] });
      for (let i = 0; i < n; i += 100) await client.v2.tweets(ids.slice(i, i + 100), { 'tweet.fields': ['non_public_metrics'] });
      bare.push(performance.now() - t);
      agent.destroy();
    }
    await handle.close();
    const limit = 2 * Math.ceil(n / 100) + 1;
    console.log(`collect-x benchmark: ${n} posts sent by Crier, ${runs} runs`);
    console.log(`API calls per run: ${calls} (limit ${limit}: two per 100 posts plus the account) ${calls <= limit ? 'OK' : 'OVER'}`);
    console.log(`observations written per run: ${observations}`);
    console.log(`median time: Crier ${median(crier).toFixed(0)} ms, bare twitter-api-v2 loop ${median(bare).toFixed(0)} ms, ratio ${(median(crier) / median(bare)).toFixed(2)}x`);
    if (calls > limit) process.exitCode = 1;
  } finally {
    child.send('stop');
    await redis.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
