import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { QUEUE_NAME } from '../../shared/jobs.js';
import { redisOptionsFromUrl } from '../../shared/queue.js';
import type { FunctionsRuntime } from './build-runtime.js';
import { processJob } from './worker.js';

export interface DrainOptions {
  /** Epoch ms by which every claimed job must be finished. */
  deadline: number;
  /** A job is only claimed if at least this much time is left: none is ever left half-claimed. */
  jobBudgetMs: number;
  concurrency: number;
  now?: () => number;
}

export interface DrainResult {
  processed: number;
  failed: number;
  stoppedBecause: 'empty' | 'time';
  remaining: number;
}

/**
 * Processes queued jobs until the queue is empty or the time budget is nearly spent (SCF runtime).
 * Jobs are claimed one at a time per slot with BullMQ's manual API and always completed or failed before
 * returning, so an invocation that ends never strands a job in `active` until the stall checker frees it.
 */
export async function drainQueue(rt: FunctionsRuntime, opts: DrainOptions): Promise<DrainResult> {
  const now = opts.now ?? Date.now;
  const worker = new Worker(QUEUE_NAME, null, {
    connection: redisOptionsFromUrl(rt.env.REDIS_URL),
    prefix: rt.env.QUEUE_PREFIX,
    autorun: false,
  });
  let processed = 0;
  let failed = 0;
  let outOfTime = false;
  const slot = async () => {
    const token = randomUUID();
    for (;;) {
      if (now() + opts.jobBudgetMs > opts.deadline) {
        outOfTime = true;
        return;
      }
      const job = await worker.getNextJob(token, { block: false });
      if (!job) return;
      try {
        const result = await processJob(rt, job);
        await job.moveToCompleted(result, token, false);
      } catch (error) {
        failed += 1;
        await job.moveToFailed(error instanceof Error ? error : new Error(String(error)), token, false);
      }
      processed += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, slot));
  } finally {
    await worker.close();
  }
  const counts = await rt.queue.getJobCounts('waiting', 'prioritized', 'delayed');
  return {
    processed,
    failed,
    stoppedBecause: outOfTime ? 'time' : 'empty',
    remaining: Object.values(counts).reduce((a, b) => a + b, 0),
  };
}
