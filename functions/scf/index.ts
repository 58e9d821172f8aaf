// Tencent SCF entry point (bundled to CommonJS for the Nodejs18.15 runtime: `npm run build:scf`).
// Thin: parse the event and context with zod, build the (warm-cached) runtime, drain the queue within the
// invocation's time limit, map the outcome.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { FunctionsEnv, parseEnv } from '../../shared/config.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/jobs.js';
import { enqueueJobs } from '../../shared/queue.js';
import { buildFunctionsRuntime, type FunctionsRuntime } from '../runtime/build-runtime.js';
import { type DrainResult, drainQueue } from '../runtime/drain.js';
import { privateEndpointsKey } from '../runtime/schedules.js';

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

/** A direct invocation (`Invoke` API / console test): optional overrides. */
export const ScfInvokeEvent = z.object({ action: z.enum(['drain']).default('drain') }).strict();

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
  /** Time kept in reserve at the end of an invocation (closing connections, returning). */
  SCF_MARGIN_MS: z.coerce.number().int().min(0).default(2000),
  /** Only claim a job if this much time is left: the longest a job may take. */
  SCF_JOB_BUDGET_MS: z.coerce.number().int().min(100).default(10_000),
});

let warm: { rt: FunctionsRuntime; env: z.infer<typeof ScfEnv> } | undefined;

export async function main_handler(
  event: unknown,
  context: unknown,
): Promise<DrainResult & { requestId?: string }> {
  const started = Date.now();
  const ev = ScfEvent.safeParse(event);
  if (!ev.success)
    throw new Error(
      `unsupported SCF event: ${ev.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const ctx = ScfContext.safeParse(context);
  if (!ctx.success)
    throw new Error(
      `unsupported SCF context: ${ctx.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  if (!warm) {
    const env = parseEnv(ScfEnv);
    requirePackagedFiles(env);
    warm = { env, rt: buildFunctionsRuntime(env) };
  }
  const { rt, env } = warm;
  if ('Type' in ev.data && ev.data.Message?.trim() === PRIVATE_ENDPOINTS_MESSAGE) {
    // Deduplicated per key like every job: a refresh still waiting absorbs this one.
    await enqueueJobs(rt.queue, [{ key: privateEndpointsKey(env.CLUSTER_ID), trigger: 'resync' }]);
  }
  if ('Type' in ev.data && ev.data.Message?.trim() === REGISTRY_TOKENS_MESSAGE) {
    await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'resync' }]);
  }
  const deadline = started + ctx.data.time_limit_in_ms - env.SCF_MARGIN_MS;
  const result = await drainQueue(rt, {
    deadline,
    jobBudgetMs: Math.min(env.SCF_JOB_BUDGET_MS, Math.max(100, ctx.data.time_limit_in_ms / 4)),
    concurrency: env.WORKER_CONCURRENCY,
  });
  rt.log.info({ ...result, requestId: ctx.data.request_id, ms: Date.now() - started }, 'scf invocation done');
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
