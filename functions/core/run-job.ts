import type { Logger } from 'pino';
import { describeKey, JobData, type JobKey, type Trigger } from '../../shared/contracts/jobs.js';
import { describeError, TerminalError } from '../../shared/errors.js';
import { describeIssues } from '../../shared/zod-issues.js';
import { reconcileImagePullSecret } from './image-pull-secret/reconcile-image-pull-secret.js';
import { reconcileNamespace } from './namespace/reconcile-namespace.js';
import { reconcileServiceAccount } from './namespace/reconcile-service-account.js';
import type {
  AuditPort,
  PrivateEndpointsDeps,
  ReconcileDeps,
  ReconcileResult,
  RegistryTokensDeps,
} from './ports.js';
import { refreshPrivateEndpoints } from './private-endpoints/refresh-private-endpoints.js';
import { refreshRegistryTokens } from './registry-tokens/refresh-registry-tokens.js';
import { scrubMessage } from './scrub.js';

export interface JobContext {
  /** 1-based attempt number. */
  attempt: number;
  maxAttempts: number;
  jobId?: string | undefined;
  /**
   * The job's deadline. Every runtime gives one (the worker: JOB_TIMEOUT_MS; SCF: below the invocation's
   * remaining time); the dependencies built for the job are bound to it.
   */
  signal?: AbortSignal | undefined;
  /** The runtime's logger for this job (a child with its id and key): the dependencies log through it. */
  log?: Logger | undefined;
  /** What the job is about and why (set by runJob from the payload): a runtime may choose its reads by it. */
  cause?: { key: JobKey; trigger: Trigger } | undefined;
}

export interface JobObserver {
  finished(
    kind: string,
    outcome: 'success' | 'retry' | 'failed',
    seconds: number,
    result?: ReconcileResult,
  ): void;
}

export interface RunJobDeps {
  /** The reconcile dependencies of the job's cluster; throws a TerminalError for an unknown cluster. */
  depsFor(cluster: string, job: JobContext): ReconcileDeps | Promise<ReconcileDeps>;
  /** Dependencies of the private-endpoint refresh (TCR API, API keys, our ConfigMap); absent: unsupported. */
  privateEndpointsFor?(
    cluster: string,
    job: JobContext,
  ): PrivateEndpointsDeps | Promise<PrivateEndpointsDeps>;
  /** Dependencies of the fleet's token refresher; absent: unsupported. */
  registryTokens?(job: JobContext): RegistryTokensDeps | Promise<RegistryTokensDeps>;
  audit: AuditPort;
  observer?: JobObserver;
  now: () => Date;
}

/**
 * The one core every runtime calls (BullMQ worker, SCF handler, CLI): validates the payload, dispatches to
 * the reconcile function of its kind, records one audit entry, and rethrows failures for the runtime to map
 * (TerminalError: fail now; anything else: retry with backoff).
 */
export async function runJob(deps: RunJobDeps, payload: unknown, job: JobContext): Promise<ReconcileResult> {
  const started = deps.now();
  const parsed = JobData.safeParse(payload);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error.issues, { root: '(payload)' });
    const error = new TerminalError(`invalid job payload: ${problems}`);
    await deps.audit.record({
      time: started.toISOString(),
      cluster: '?',
      kind: 'invalid',
      key: '?',
      trigger: '?',
      actions: [],
      outcome: 'failed',
      error: scrubMessage(error.message),
      durationMs: 0,
      attempt: job.attempt,
      jobId: job.jobId,
    });
    deps.observer?.finished('invalid', 'failed', 0);
    throw error;
  }

  const { key, trigger } = parsed.data;
  const ctx: JobContext = { ...job, cause: { key, trigger } };
  let result: ReconcileResult | undefined;
  let failure: unknown;
  try {
    switch (key.kind) {
      case 'namespace':
        result = await reconcileNamespace(await deps.depsFor(key.cluster, ctx), key.name);
        break;
      case 'serviceaccount':
        result = await reconcileServiceAccount(await deps.depsFor(key.cluster, ctx), key.namespace, key.name);
        break;
      case 'imagepullsecret':
        result = await reconcileImagePullSecret(await deps.depsFor(key.cluster, ctx), key.name, {
          fanOut: true,
        });
        break;
      case 'imagepullsecret-status':
        result = await reconcileImagePullSecret(await deps.depsFor(key.cluster, ctx), key.name, {
          fanOut: false,
        });
        break;
      case 'private-endpoints':
        if (!deps.privateEndpointsFor)
          throw new TerminalError('this runtime is not configured to refresh private endpoints');
        result = await refreshPrivateEndpoints(await deps.privateEndpointsFor(key.cluster, ctx));
        break;
      case 'registry-tokens':
        if (!deps.registryTokens) throw new TerminalError('this runtime is not configured to refresh tokens');
        result = await refreshRegistryTokens(await deps.registryTokens(ctx));
        break;
    }
  } catch (error) {
    failure = error;
    // A handler that did part of its work before failing says what, for the audit entry.
    const partial = (error as { partialResult?: ReconcileResult } | null)?.partialResult;
    if (partial) result = partial;
  }

  const durationMs = deps.now().getTime() - started.getTime();
  const terminal = failure instanceof TerminalError || job.attempt >= job.maxAttempts;
  const outcome = failure === undefined ? 'success' : terminal ? 'failed' : 'retry';
  await deps.audit.record({
    time: started.toISOString(),
    cluster: key.cluster,
    kind: key.kind,
    key: describeKey(key),
    namespace: 'namespace' in key ? key.namespace : key.kind === 'namespace' ? key.name : undefined,
    cr: result?.crs,
    trigger,
    actions: result?.actions ?? [],
    outcome,
    error: failure === undefined ? undefined : scrubMessage(describeError(failure)),
    durationMs,
    attempt: job.attempt,
    jobId: job.jobId,
  });
  deps.observer?.finished(key.kind, outcome, durationMs / 1000, result);
  if (failure !== undefined) {
    if (failure instanceof Error) failure.message = scrubMessage(failure.message);
    throw failure;
  }
  return result as ReconcileResult;
}
