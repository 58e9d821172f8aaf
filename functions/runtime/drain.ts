import { Worker } from 'bullmq';
import { QUEUE_NAME } from '../../shared/contracts/jobs.js';
import type { ReleaseOutcome } from '../../shared/contracts/wake-slots.js';
import { bullConnection } from '../../shared/redis-connection.js';
import { withTimeout } from '../../shared/timeout.js';
import type { FunctionsRuntime } from './build-runtime.js';
import { processJob } from './worker.js';

/** The wake slot an invocation holds (when the relay woke it): given back when there is nothing left. */
export interface HeldSlot {
  release(force: boolean): Promise<ReleaseOutcome>;
}

export interface DrainOptions {
  /** Epoch ms by which every claimed job must be finished. */
  deadline: number;
  /** A job is only claimed if at least this much time is left; it is also the job's own deadline. */
  jobBudgetMs: number;
  concurrency: number;
  /** With nothing to do for this long (and no delayed job due soon), the invocation returns. */
  idleMs: number;
  /** A delayed job (a status refresh, a retry) due within this long keeps the invocation, if it fits. */
  delayedWaitMs: number;
  /**
   * The slot is given back this long before the invocation stops claiming jobs, so that the relay's successor
   * (a cold start, perhaps) is up while this one still takes new jobs: no gap at the hand-over.
   */
  handoffMs: number;
  /** BullMQ job lock (renewed while a job runs) and stalled-job check interval. */
  lockMs: number;
  stalledIntervalMs: number;
  slot?: HeldSlot | undefined;
  now?: () => number;
}

export interface DrainResult {
  processed: number;
  failed: number;
  stoppedBecause: 'empty' | 'time';
  remaining: number;
  /** Jobs this invocation's stalled check gave back to the queue (left active by a killed invocation). */
  stalledRecovered: number;
}

/**
 * Processes queued jobs until the queue stays empty for `idleMs` or the time budget is nearly spent (the SCF
 * runtime). It is BullMQ's own Worker loop (`run()`), so each invocation also does what manual fetching
 * would skip: the stalled-job check at its start and every `stalledIntervalMs` (a job left active by an
 * invocation killed at its time limit goes back to the queue once its lock expires), and lock renewal while
 * a job runs. Every job gets a deadline below the invocation's end, so it is completed, or failed back to the
 * queue for a retry, before the invocation returns: none is left active without an owner.
 */
export async function drainQueue(rt: FunctionsRuntime, opts: DrainOptions): Promise<DrainResult> {
  const now = opts.now ?? Date.now;
  let processed = 0;
  let failed = 0;
  let active = 0;
  let stalledRecovered = 0;
  let lastBusy = now();
  const redis = bullConnection(rt.env.REDIS_URL);
  const worker = new Worker(
    QUEUE_NAME,
    async (job, _token, signal) => {
      active += 1;
      lastBusy = now();
      try {
        const result = await processJob(rt, job, {
          deadlineAt: Math.min(now() + opts.jobBudgetMs, opts.deadline),
          signal,
        });
        processed += 1;
        return result;
      } catch (error) {
        failed += 1;
        processed += 1;
        throw error;
      } finally {
        active -= 1;
        lastBusy = now();
      }
    },
    {
      connection: redis.connection,
      prefix: rt.env.QUEUE_PREFIX,
      concurrency: opts.concurrency,
      autorun: false,
      lockDuration: opts.lockMs,
      stalledInterval: opts.stalledIntervalMs,
      // Seconds a fetch blocks on an empty queue before looking again (close() interrupts it).
      drainDelay: 1,
    },
  );
  worker.once('closed', redis.release);
  worker.on('error', (error) => rt.log.warn({ err: error.message }, 'drain: worker error'));
  worker.on('stalled', (jobId) => {
    stalledRecovered += 1;
    rt.log.warn({ job: jobId }, 'stalled job (its invocation ended without it) back in the queue');
  });
  const running = worker.run().catch((error: unknown) => {
    rt.log.error({ err: error instanceof Error ? error.message : String(error) }, 'drain: worker stopped');
  });

  let stoppedBecause: DrainResult['stoppedBecause'] = 'empty';
  let released = opts.slot === undefined;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const t = now();
      if (t + opts.jobBudgetMs > opts.deadline) {
        stoppedBecause = 'time';
        break;
      }
      if (!released && opts.slot && t + opts.jobBudgetMs + opts.handoffMs > opts.deadline) {
        // Near the end: the relay may wake a successor now (jobs still arriving are taken by both meanwhile).
        await opts.slot.release(true).catch(() => undefined);
        released = true;
      }
      if (active > 0 || t - lastBusy < opts.idleMs) continue;
      const due = await nextDelayedDue(rt);
      if (due !== undefined && due - t <= opts.delayedWaitMs && due + opts.jobBudgetMs <= opts.deadline)
        continue;
      if (opts.slot && !released) {
        // Atomic: a job that arrived meanwhile keeps this invocation (and its slot) busy.
        const outcome = await withTimeout(opts.slot.release(false), 2000, () => new Error('no answer')).catch(
          () => 'released' as const,
        );
        if (outcome === 'busy') {
          lastBusy = t;
          continue;
        }
        released = true;
      }
      break;
    }
  } finally {
    // Out of time: give the slot back first, so that the relay can wake a successor while the last jobs end.
    if (!released && opts.slot) await opts.slot.release(true).catch(() => undefined);
    await worker.close();
    await running;
  }
  const counts = await rt.queue.getJobCounts('waiting', 'prioritized', 'delayed');
  return {
    processed,
    failed,
    stoppedBecause,
    remaining: Object.values(counts).reduce((a, b) => a + b, 0),
    stalledRecovered,
  };
}

/**
 * When the earliest delayed job is due (epoch ms), if any. BullMQ 6 scores its delayed set as
 * `dueMs * 0x1000 + sequence` (commands/includes/getDelayedScore.lua).
 */
async function nextDelayedDue(rt: FunctionsRuntime): Promise<number | undefined> {
  // Redis unreachable: nothing is known to be due (the invocation ends; BullMQ's own calls report the outage).
  const key = `${rt.env.QUEUE_PREFIX}:${QUEUE_NAME}:delayed`;
  const [, score] = await withTimeout(rt.redis.zrange(key, '0', '0', 'WITHSCORES'), 2000, () => {
    return new Error('Redis did not answer');
  }).catch((): string[] => []);
  return score === undefined ? undefined : Math.floor(Number(score) / 0x1000);
}
