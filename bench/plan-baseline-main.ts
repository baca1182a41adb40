import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { audienceKeys } from '../src/domain/audience.js';

/**
 * The planning baseline as its own process: what a hand-rolled script does to
 * fan a list out into BullMQ jobs — read the list's members a page at a time
 * and add one job per --batch_size recipients (their ids in the job's data)
 * with `addBulk`, PLAN_BULK jobs per call. No filtering, no bookkeeping.
 */

const config = loadConfig();
const redis = new Redis(config.redisUrl!, { maxRetriesPerRequest: null });
const queue = new Queue('bare-plan', { connection: redis });
const key = audienceKeys(config.redis_prefix).list(process.env.PLAN_LIST ?? 'everyone');
const size = config.batch_size;
const bulk = Number(process.env.PLAN_BULK ?? 100);
// CPU of this process and of redis-server over the timed part (read outside it), for the report.
const redisCpu = async () => {
  const info = await redis.info('cpu');
  const read = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return read('used_cpu_user') + read('used_cpu_sys');
};
const redis0 = await redisCpu();
const cpu0 = process.cpuUsage();
const startedAt = Date.now();
let jobs: Array<{ name: string; data: { ids: string[] }; opts: { jobId: string } }> = [];
let batch = 0;
let recipients = 0;
for (let offset = 0; ; offset += size) {
  const ids = await redis.zrange(key, offset, offset + size - 1);
  if (ids.length === 0) break;
  recipients += ids.length;
  jobs.push({ name: 'deliver', data: { ids }, opts: { jobId: `bare-${batch++}` } });
  if (jobs.length >= bulk) {
    await queue.addBulk(jobs);
    jobs = [];
  }
}
if (jobs.length) await queue.addBulk(jobs);
const secs = (Date.now() - startedAt) / 1000;
const used = process.cpuUsage(cpu0);
const cpu = (used.user + used.system) / 1e6;
const redisSecs = (await redisCpu()) - redis0;
await queue.obliterate({ force: true });
await queue.close();
redis.disconnect();
process.send?.({ type: 'done', secs, recipients, jobs: batch, cpu, redisCpu: redisSecs });
process.disconnect?.();
