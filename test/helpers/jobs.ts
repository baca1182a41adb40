import type { Job, Queue } from 'bullmq';
import { waitFor } from './metrics.js';

/**
 * Waits until a job has completed and returns it read after completion. A job object fetched just
 * before it completed carries no return value yet, so the state is read first, then the job.
 */
export function completedJob(queue: Queue, jobId: string, timeoutMs = 15_000): Promise<Job> {
  return waitFor(async () => ((await queue.getJobState(jobId)) === 'completed' ? queue.getJob(jobId) : undefined), `job ${jobId} in ${queue.name} to complete`, timeoutMs);
}
