import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { describeKey, JobData, QUEUE_NAME } from '../../shared/contracts/jobs.js';
import { startDeadline } from '../../shared/deadline.js';
import { TerminalError } from '../../shared/errors.js';
import { outageLog } from '../../shared/outage-log.js';
import { enqueueJobs } from '../../shared/queue.js';
import { bullConnection } from '../../shared/redis-connection.js';
import type { ReconcileResult } from '../core/ports.js';
import { runJob } from '../core/run-job.js';
import type { FunctionsRuntime } from './build-runtime.js';
import { registryTokensTickHasWork } from './schedules.js';

/** What a job leaves in Redis as its return value: verbs and counts, never contents. */
export function summarize(result: ReconcileResult): Record<string, number | string> {
  const counts: Record<string, number | string> = {};
  for (const a of result.actions) counts[a.verb] = ((counts[a.verb] as number | undefined) ?? 0) + 1;
  if (result.skipped) counts.skipped = result.skipped;
  return counts;
}

export interface JobRun {
  /** Epoch ms by which the job must be done: its signal aborts then (the worker: JOB_TIMEOUT_MS from now). */
  deadlineAt: number;
  /** Aborts it earlier (BullMQ's cancellation signal). */
  signal?: AbortSignal | undefined;
}

/**
 * Runs one BullMQ job through the shared core, with a deadline that reaches every API call it makes; a
 * TerminalError becomes BullMQ's "never retry", anything else (a deadline included) a retry with backoff.
 */
export async function processJob(
  rt: FunctionsRuntime,
  job: Job,
  run: JobRun,
): Promise<Record<string, number | string>> {
  const data = job.data as Partial<JobData>;
  const key = data.key ? describeKey(data.key as JobData['key']) : '?';
  const log = rt.log.child({ job: job.id, key });
  // A scheduler's tick cannot be deduplicated (BullMQ refuses dedup options on scheduler templates), so a
  // tick only enqueues its key the deduplicated way: a periodic job never runs beside itself (for the token
  // refresher, two runs at once could issue two tokens). A payload that does not parse runs below and fails.
  const tick = job.repeatJobKey ? JobData.safeParse(job.data) : undefined;
  if (tick?.success) {
    if (tick.data.key.kind === 'registry-tokens' && !(await registryTokensTickHasWork(rt)))
      return { skipped: 'token refresher idle: no token asked for or stored at its last run' };
    await enqueueJobs(rt.queue, [{ key: tick.data.key, trigger: tick.data.trigger }]);
    return { enqueued: 1 };
  }
  const deadline = startDeadline(run.deadlineAt - Date.now(), `job ${key}`, run.signal);
  try {
    const result = await runJob(rt.runDeps, job.data, {
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      jobId: job.id,
      signal: deadline.signal,
      log,
    });
    log.debug({ actions: result.actions.length }, 'job done');
    return summarize(result);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof TerminalError) {
      log.error({ err: message }, 'job failed terminally');
      throw new UnrecoverableError(message);
    }
    log.warn({ err: message, attempt: job.attemptsMade + 1 }, 'job failed; will retry with backoff');
    throw error;
  } finally {
    deadline.dispose();
  }
}

/** The local, embedded default runtime: a BullMQ Worker with the configured concurrency. */
export function startWorker(rt: FunctionsRuntime): Worker {
  const redis = bullConnection(rt.env.REDIS_URL);
  const worker = new Worker(
    QUEUE_NAME,
    (job, _token, signal) => processJob(rt, job, { deadlineAt: Date.now() + rt.env.JOB_TIMEOUT_MS, signal }),
    {
      connection: redis.connection,
      prefix: rt.env.QUEUE_PREFIX,
      concurrency: rt.env.WORKER_CONCURRENCY,
    },
  );
  worker.once('closed', redis.release);
  worker.on('error', outageLog(rt.log, 'worker: Redis unreachable or a job could not be handled (retrying)'));
  return worker;
}
