import type { Job, Queue } from 'bullmq';

/**
 * Waits until a job has completed and returns it read after completion. A job object fetched just
 * before it completed carries no return value yet, so the state is read first, then the job.
 */
export async function completedJob(queue: Queue, jobId: string, timeoutMs = 15_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await queue.getJobState(jobId)) === 'completed') {
      const job = await queue.getJob(jobId);
      if (job) return job;
    }
    if (Date.now() > deadline) throw new Error(`job ${jobId} in ${queue.name} did not complete within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
