// Tencent SCF entry point (bundled to CommonJS for the Nodejs18.15 runtime: `npm run build:scf`).
// Thin: parse the event and context with zod, build the (warm-cached) runtime, drain the queue within the
// invocation's time limit, map the outcome. Invoked by the relay (an asynchronous Invoke naming a wake slot,
// as soon as it enqueues) and by the timers of serverless.yml (the safety net).

import { existsSync } from 'node:fs';
import { z } from 'zod';
import { FunctionsEnv, ms, parseEnv } from '../../shared/config.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/contracts/jobs.js';
import { WakeSlots } from '../../shared/contracts/wake-slots.js';
import { describeError } from '../../shared/errors.js';
import { enqueueJobs } from '../../shared/queue.js';
import { withTimeout } from '../../shared/timeout.js';
import { describeIssues } from '../../shared/zod-issues.js';
import { buildFunctionsRuntime, type FunctionsRuntime } from '../runtime/build-runtime.js';
import { type DrainResult, drainQueue, type HeldSlot } from '../runtime/drain.js';
import { privateEndpointsKey, registryTokensTickHasWork } from '../runtime/schedules.js';
import { catchUpSecretChanges, SecretWatchEnv } from '../runtime/secret-watch.js';

/** The timer `argument` (serverless.yml) that enqueues the private-endpoint refresh before draining. */
export const PRIVATE_ENDPOINTS_MESSAGE = 'private-endpoints';

/** The timer `argument` that enqueues the fleet's token refresh before draining. */
export const REGISTRY_TOKENS_MESSAGE = 'registry-tokens';

/** SCF's timer trigger event. */
export const ScfTimerEvent = z.object({
  Type: z.literal('Timer'),
  TriggerName: z.string(),
  Time: z.string(),
  Message: z.string().optional(),
});

/**
 * A direct invocation (`Invoke` API, console test). The relay's carries the wake slot it took and the
 * invocation's id in that slot (keys only: never a credential).
 */
export const ScfInvokeEvent = z
  .object({
    action: z.enum(['drain']).default('drain'),
    slot: z.number().int().min(0).max(63).optional(),
    wake: z
      .string()
      .regex(/^[a-z0-9]{8,40}$/)
      .optional(),
  })
  .strict();

export const ScfEvent = z.union([ScfTimerEvent, ScfInvokeEvent]);

export const ScfContext = z
  .object({
    time_limit_in_ms: z.number().int().positive(),
    request_id: z.string().optional(),
    function_name: z.string().optional(),
    memory_limit_in_mb: z.number().optional(),
  })
  .passthrough();

const ScfEnv = FunctionsEnv.extend({
  ...SecretWatchEnv.shape,
  /** Time kept in reserve at the end of an invocation (closing connections, returning). */
  SCF_MARGIN_MS: ms('SCF_MARGIN_MS', 0).default(2000),
  /** Only claim a job if this much time is left: the longest a job may take (its deadline). */
  SCF_JOB_BUDGET_MS: ms('SCF_JOB_BUDGET_MS', 100).default(10_000),
  /** An invocation with nothing to do for this long returns (events meanwhile are taken at once). */
  SCF_IDLE_MS: ms('SCF_IDLE_MS', 0).default(2000),
  /** The relay's slot is given back this long before the invocation stops claiming (a successor starts). */
  SCF_HANDOFF_MS: ms('SCF_HANDOFF_MS', 0).default(5000),
  /** A delayed job due within this long (a coalesced status refresh) keeps the invocation, if it fits. */
  SCF_DELAYED_WAIT_MS: ms('SCF_DELAYED_WAIT_MS', 0).default(6000),
  /**
   * BullMQ's job lock outlives the invocation's time limit by this much: a job's lock cannot expire while the
   * invocation that holds it may still run (even frozen), so no job ever runs twice at once; once SCF has
   * killed the invocation, the stalled check of a later one gives the job back within two intervals.
   */
  SCF_LOCK_MARGIN_MS: ms('SCF_LOCK_MARGIN_MS', 0).default(5000),
  /** The stalled-job check interval; default: the lock duration (time limit + margin). */
  SCF_STALLED_INTERVAL_MS: ms('SCF_STALLED_INTERVAL_MS', 1000).optional(),
});

let warm: { rt: FunctionsRuntime; env: z.infer<typeof ScfEnv>; slots: WakeSlots } | undefined;

export async function main_handler(
  event: unknown,
  context: unknown,
): Promise<DrainResult & { requestId?: string }> {
  const started = Date.now();
  const ev = ScfEvent.safeParse(event);
  if (!ev.success) throw new Error(`unsupported SCF event: ${describeIssues(ev.error.issues)}`);
  const ctx = ScfContext.safeParse(context);
  if (!ctx.success) throw new Error(`unsupported SCF context: ${describeIssues(ctx.error.issues)}`);
  if (!warm) {
    const env = parseEnv(ScfEnv);
    requirePackagedFiles(env);
    const rt = buildFunctionsRuntime(env);
    warm = { env, rt, slots: new WakeSlots(rt.redis, env.QUEUE_PREFIX) };
  }
  const { rt, env, slots } = warm;
  const limit = ctx.data.time_limit_in_ms;
  if ('Type' in ev.data && ev.data.Message?.trim() === PRIVATE_ENDPOINTS_MESSAGE) {
    // Deduplicated per key like every job: a refresh still waiting absorbs this one.
    await enqueueJobs(rt.queue, [{ key: privateEndpointsKey(env.CLUSTER_ID), trigger: 'resync' }]);
  }
  if (
    'Type' in ev.data &&
    ev.data.Message?.trim() === REGISTRY_TOKENS_MESSAGE &&
    (await registryTokensTickHasWork(rt))
  ) {
    await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'resync' }]);
  }
  // The relay's wake slot: held while this invocation can still run (a killed one frees it at its limit).
  let slot: HeldSlot | undefined;
  if ('action' in ev.data && ev.data.slot !== undefined && ev.data.wake !== undefined) {
    const { slot: n, wake } = ev.data;
    // Redis not answering: drain without the slot (the lease then ends at its time, as for a killed one).
    const claimed = await withTimeout(
      slots.claim(n, wake, Date.now(), limit),
      2000,
      () => new Error('no answer'),
    ).catch(() => false);
    if (claimed) slot = { release: (force) => slots.release(n, wake, force) };
  }
  // No process lives between invocations to watch our Secrets: replay what happened to them since the last
  // invocation (a second's window), so one deleted or edited by hand is repaired by this drain. Skipped when
  // the invocation is too short to spare the second.
  if (env.SECRET_WATCH === 'on' && started + limit - env.SCF_MARGIN_MS - Date.now() >= 5000) {
    for (const cluster of rt.fleet.clusters.map((c) => c.id)) {
      await catchUpSecretChanges(rt, cluster).catch((error: unknown) =>
        rt.log.warn(
          { cluster, err: describeError(error) },
          'secret catch-up failed; the next invocation retries',
        ),
      );
    }
  }
  const result = await drainQueue(rt, {
    deadline: started + limit - env.SCF_MARGIN_MS,
    jobBudgetMs: Math.min(env.SCF_JOB_BUDGET_MS, Math.max(100, limit / 4)),
    concurrency: env.WORKER_CONCURRENCY,
    idleMs: env.SCF_IDLE_MS,
    handoffMs: Math.min(env.SCF_HANDOFF_MS, limit / 4),
    delayedWaitMs: env.SCF_DELAYED_WAIT_MS,
    lockMs: limit + env.SCF_LOCK_MARGIN_MS,
    stalledIntervalMs: env.SCF_STALLED_INTERVAL_MS ?? limit + env.SCF_LOCK_MARGIN_MS,
    slot,
  });
  rt.log.info(
    {
      ...result,
      requestId: ctx.data.request_id,
      trigger: 'Type' in ev.data ? `timer ${ev.data.TriggerName}` : `invoke slot ${ev.data.slot ?? '-'}`,
      ms: Date.now() - started,
    },
    'scf invocation done',
  );
  return { ...result, requestId: ctx.data.request_id };
}

/**
 * serverless.yml points at files SCF serves from the package (/var/user/...): a missing one is a packaging
 * mistake, named here instead of surfacing later as a kubeconfig parse error in every job.
 */
function requirePackagedFiles(env: {
  KUBECONFIG?: string | undefined;
  FLEET_FILE?: string | undefined;
}): void {
  for (const [variable, file, build] of [
    ['KUBECONFIG', env.KUBECONFIG, 'SCF_KUBECONFIG'],
    ['FLEET_FILE', env.FLEET_FILE, 'SCF_FLEET_FILE'],
  ] as const) {
    if (file && !existsSync(file))
      throw new Error(
        `${variable} is ${file}, which is not in the function's package: build it with ${build}=<file> npm run build:scf`,
      );
  }
}

/** For tests: forget the warm runtime (a cold start). */
export async function resetWarmRuntime(): Promise<void> {
  await warm?.rt.close();
  warm = undefined;
}
