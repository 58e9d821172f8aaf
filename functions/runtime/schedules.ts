import { z } from 'zod';
import { ms, parseEnv } from '../../shared/config.js';
import {
  ClusterId,
  type JobData,
  JobData as JobDataSchema,
  type JobKey,
  REGISTRY_TOKENS_KEY,
} from '../../shared/contracts/jobs.js';
import { tokenWorkFingerprint } from '../core/registry-tokens/plan-registry-tokens.js';
import type { FunctionsRuntime } from './build-runtime.js';

// Periodic jobs of the local (BullMQ) runtime. In the cloud the same jobs come from SCF timers
// (serverless.yml), routed by functions/scf/index.ts.

export const SchedulesEnv = z.object({
  /** How often each cluster's private-endpoint map is refreshed; 0 removes the schedule. */
  PRIVATE_ENDPOINTS_EVERY_MS: ms('PRIVATE_ENDPOINTS_EVERY_MS', 0)
    .refine((ms) => ms === 0 || ms >= 10_000, 'PRIVATE_ENDPOINTS_EVERY_MS must be 0 (off) or ≥ 10000')
    .default(300_000),
  /** How often the fleet's TCR tokens are checked (issue before expiry, distribute, revoke); 0 removes it. */
  REGISTRY_TOKENS_EVERY_MS: ms('REGISTRY_TOKENS_EVERY_MS', 0)
    .refine((ms) => ms === 0 || ms >= 1000, 'REGISTRY_TOKENS_EVERY_MS must be 0 (off) or ≥ 1000')
    .default(60_000),
});
export type SchedulesEnv = z.infer<typeof SchedulesEnv>;

export function privateEndpointsKey(cluster: string): JobKey {
  return { cluster: ClusterId.parse(cluster), kind: 'private-endpoints', name: 'updater-config' };
}

/** The scheduler's id per cluster: stable, so that every worker start upserts the same one. */
export function privateEndpointsSchedulerId(cluster: string): string {
  return `private-endpoints|${cluster}`;
}

/** The fleet's token refresher's scheduler id. */
export const REGISTRY_TOKENS_SCHEDULER_ID = 'registry-tokens|fleet';

/** The schedulers `ensureSchedules` keeps for these settings (those with a period, and that period). */
export function expectedSchedulers(clusters: readonly string[], env: SchedulesEnv): Map<string, number> {
  const expected = new Map<string, number>();
  if (env.PRIVATE_ENDPOINTS_EVERY_MS > 0)
    for (const c of clusters) expected.set(privateEndpointsSchedulerId(c), env.PRIVATE_ENDPOINTS_EVERY_MS);
  if (env.REGISTRY_TOKENS_EVERY_MS > 0)
    expected.set(REGISTRY_TOKENS_SCHEDULER_ID, env.REGISTRY_TOKENS_EVERY_MS);
  return expected;
}

export interface EnsureSchedulesOptions {
  /** Default: the runtime's CLUSTER_ID. */
  clusters?: string[];
  /** Default: PRIVATE_ENDPOINTS_EVERY_MS from process.env. */
  env?: SchedulesEnv;
  now?: () => number;
}

/**
 * Upserts the periodic jobs (idempotent: `upsertJobScheduler` replaces a scheduler of the same id, so
 * every worker may call this at start-up and there is still one schedule per cluster).
 */
export async function ensureSchedules(
  rt: FunctionsRuntime,
  options: EnsureSchedulesOptions = {},
): Promise<void> {
  const env = options.env ?? parseEnv(SchedulesEnv);
  const now = options.now ?? Date.now;
  for (const cluster of options.clusters ?? [rt.env.CLUSTER_ID]) {
    const id = privateEndpointsSchedulerId(cluster);
    if (env.PRIVATE_ENDPOINTS_EVERY_MS === 0) {
      await rt.queue.removeJobScheduler(id);
      rt.log.info({ scheduler: id }, 'private-endpoints schedule removed');
      continue;
    }
    // A payload checked as the consumer checks it (`at` is the template's time; the key is what counts).
    const data: JobData = JobDataSchema.parse({
      v: 1,
      key: privateEndpointsKey(cluster),
      trigger: 'resync',
      at: now(),
    });
    await rt.queue.upsertJobScheduler(
      id,
      { every: env.PRIVATE_ENDPOINTS_EVERY_MS },
      { name: 'private-endpoints', data },
    );
    rt.log.info(
      { scheduler: id, everyMs: env.PRIVATE_ENDPOINTS_EVERY_MS },
      'private-endpoints schedule ensured',
    );
  }
  // One scheduler for the whole fleet (not per cluster): a rotation is one CreateInstanceToken per registry.
  const tokensId = REGISTRY_TOKENS_SCHEDULER_ID;
  if (env.REGISTRY_TOKENS_EVERY_MS === 0) {
    await rt.queue.removeJobScheduler(tokensId);
  } else {
    const data: JobData = JobDataSchema.parse({
      v: 1,
      key: REGISTRY_TOKENS_KEY,
      trigger: 'resync',
      at: now(),
    });
    await rt.queue.upsertJobScheduler(
      tokensId,
      { every: env.REGISTRY_TOKENS_EVERY_MS },
      { name: 'registry-tokens', data },
    );
  }
}

/**
 * Whether a scheduled tick of the token refresher has work: not when the last run, less than an hour ago, found
 * the same fleet with no token asked for and none stored (then the tick costs one Redis GET, no API request).
 * Whatever creates work enqueues the refresher itself: a spec.tcr CR's job, `tokens`, `rotate`.
 */
export async function registryTokensTickHasWork(rt: FunctionsRuntime): Promise<boolean> {
  const deps = rt.registryTokensDeps();
  const fingerprint = tokenWorkFingerprint({ clusters: deps.clusters, registries: deps.registries });
  return !(await rt.tokenReports.isIdle(fingerprint).catch(() => false));
}
