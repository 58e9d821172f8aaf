import { z } from 'zod';
import { ClusterId } from './contracts/jobs.js';
import { redisUrlProblem } from './redis-connection.js';
import { describeIssues } from './zod-issues.js';

// The environment's helpers, for every part's settings (the relay, webhook, hosts-updater, functions, SCF).

/** A whole number from an environment variable, at least `min`; `unit` names it in the message. */
export const intFrom = (name: string, min: number, unit?: string) =>
  z.coerce
    .number({ error: `${name} must be a number${unit ? ` of ${unit}` : ''}` })
    .int(`${name} must be an integer`)
    .min(min, `${name} must be ≥ ${min}`);
/** A duration in milliseconds, at least `min`. */
export const ms = (name: string, min: number) => intFrom(name, min, 'milliseconds');
/** A duration in seconds, at least `min`. */
export const seconds = (name: string, min: number) => intFrom(name, min, 'seconds');
/** A TCP port; 0 = any free one. */
export const port = z.coerce.number().int().min(0).max(65535);

/**
 * An optional setting where an empty value means "not set": deployment tools (serverless.yml's
 * `${env:X, ''}`, Helm values) write empty strings for what the user left out.
 */
export const emptyAsUnset = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** Settings shared by every component, from the environment. */
export const CommonEnv = z.object({
  /** One server (redis://, rediss://) or a Redis Cluster's seed nodes (redis+cluster://h:p,h:p): shared/redis-connection.ts. */
  REDIS_URL: z
    .string()
    .superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z.string().min(1).default('{tcr}'),
  CLUSTER_ID: ClusterId.default('local'),
  /** Kubeconfig file (local runs); absent in a cluster, where the ServiceAccount is used. */
  KUBECONFIG: emptyAsUnset,
  KUBE_CONTEXT: emptyAsUnset,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Runs of a job before it fails for good, for every producer (relay, worker, CLI): BullMQ's `attempts`. */
  JOB_ATTEMPTS: intFrom('JOB_ATTEMPTS', 1).default(8),
  /** The first retry's delay; BullMQ doubles it each time, with jitter. */
  JOB_BACKOFF_MS: intFrom('JOB_BACKOFF_MS', 10).default(500),
});

export const FunctionsEnv = CommonEnv.extend({
  WORKER_CONCURRENCY: intFrom('WORKER_CONCURRENCY', 1).default(16),
  /** Every job's deadline in the worker runtime (SCF: below the invocation's remaining time instead). */
  JOB_TIMEOUT_MS: intFrom('JOB_TIMEOUT_MS', 1000).default(60_000),
  /** Status writes are coalesced into one per CR per window. */
  STATUS_DELAY_MS: intFrom('STATUS_DELAY_MS', 0).default(5000),
  /** Stale Secrets (a rotation) a CR job rewrites in place per run; 0 = always fan out namespace jobs. */
  DIRECT_UPDATE_BUDGET: intFrom('DIRECT_UPDATE_BUDGET', 0).default(20_000),
  /** ...and for at most this long per run (an SCF invocation's job budget must cover it). */
  DIRECT_UPDATE_MS: intFrom('DIRECT_UPDATE_MS', 100).default(20_000),
  AUDIT_STREAM_MAXLEN: intFrom('AUDIT_STREAM_MAXLEN', 100).default(100_000),
  METRICS_PORT: intFrom('METRICS_PORT', 0).default(9464),
  /** The fleet file (clusters, registries); absent: a fleet of one, CLUSTER_ID. */
  FLEET_FILE: emptyAsUnset,
  /** A replaced long-term token stays valid this long after every cluster has the new one. */
  TOKEN_REVOKE_GRACE_SECONDS: intFrom('TOKEN_REVOKE_GRACE_SECONDS', 0).default(600),
  /** The token refresher gives each cluster this long to answer before reporting it unreachable. */
  TOKEN_CLUSTER_TIMEOUT_MS: intFrom('TOKEN_CLUSTER_TIMEOUT_MS', 100).default(15_000),
  /** Take over the Secrets Tencent's TCR add-on made (functions/core/pull-secret/plan-adoption.ts); a CR's annotation wins. */
  ADOPT_ADDON_SECRETS: z
    .enum(['true', 'false', ''], { error: 'ADOPT_ADDON_SECRETS must be "true" or "false"' })
    .default('false')
    .transform((v) => v === 'true'),
});
export type FunctionsEnv = z.infer<typeof FunctionsEnv>;

/**
 * Parses the environment with a schema; on failure the error names every bad variable and why,
 * e.g. `invalid configuration: WORKER_CONCURRENCY: WORKER_CONCURRENCY must be ≥ 1`.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new Error(`invalid configuration: ${describeIssues(result.error.issues, { root: '(env)' })}`);
}
