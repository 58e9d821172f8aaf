import { parseEnv } from '../../shared/config.js';
import { describeError } from '../../shared/errors.js';
import { withTimeout } from '../../shared/timeout.js';
import type { FunctionsRuntime } from './build-runtime.js';
import {
  type EnsureSchedulesOptions,
  ensureSchedules,
  expectedSchedulers,
  SchedulesEnv,
} from './schedules.js';

// BullMQ keeps job schedulers in Redis only: a Redis that restarts empty (no persistence, as BullMQ is often
// run) or is flushed loses them, and no periodic job runs again until something upserts them. Every worker
// therefore keeps them: at once when its Redis connection comes back, and after a cheap check (one HGET per
// scheduler) at least twice per shortest period, so that a lost scheduler is back within one period. Upserts
// are idempotent: whichever worker notices first restores them, the others find them there.

export interface ScheduleKeeper {
  /** Resolves once the first ensure is done. */
  readonly ready: Promise<void>;
  stop(): void;
}

export function keepSchedules(rt: FunctionsRuntime, options: EnsureSchedulesOptions = {}): ScheduleKeeper {
  const env = options.env ?? parseEnv(SchedulesEnv);
  const clusters = options.clusters ?? [rt.env.CLUSTER_ID];
  const expected = expectedSchedulers(clusters, env);
  const shortest = Math.min(...expected.values());
  const checkEveryMs = Math.max(250, Math.min(5000, Math.floor(shortest / 2)));
  const ensure = () => ensureSchedules(rt, { ...options, env, clusters });
  let busy = false;
  let unreachableSince: number | undefined;

  const check = async (reason: 'reconnected' | 'check') => {
    if (busy || expected.size === 0) return;
    busy = true;
    try {
      const missing = await withTimeout(
        (async () => {
          const ids: string[] = [];
          for (const id of expected.keys()) if (!(await rt.queue.getJobScheduler(id))) ids.push(id);
          return ids;
        })(),
        Math.max(1000, checkEveryMs),
        () => new Error('Redis did not answer'),
      );
      if (unreachableSince !== undefined) {
        rt.log.info({ downForMs: Date.now() - unreachableSince }, 'schedules: Redis reachable again');
        unreachableSince = undefined;
      }
      if (missing.length === 0) return;
      rt.log.warn(
        { schedulers: missing, reason },
        'job schedulers missing (Redis restarted empty or was flushed): re-creating them',
      );
      await ensure();
    } catch (error) {
      // One line per outage, not one per check.
      if (unreachableSince === undefined) {
        unreachableSince = Date.now();
        rt.log.warn(
          { err: describeError(error) },
          'schedules: cannot check the job schedulers (Redis unreachable)',
        );
      }
    } finally {
      busy = false;
    }
  };

  const onReady = () => void check('reconnected');
  const timer = setInterval(() => void check('check'), checkEveryMs);
  timer.unref();
  const ready = ensure().then(() => {
    rt.redis.on('ready', onReady);
  });
  return {
    ready,
    stop() {
      clearInterval(timer);
      rt.redis.removeListener('ready', onReady);
    },
  };
}
