import { FINALIZER } from '../../../shared/contracts/labels.js';
import { wantsNamespace, wantsServiceAccount } from '../../../shared/contracts/matching.js';
import { secretNameFor } from '../../../shared/contracts/names.js';
import type {
  Condition,
  CrView,
  FailedNamespace,
  ImagePullSecretStatus,
  NamespacedNameAt,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../model.js';
import { desiredSecretFor, isSecretConverged } from '../pull-secret/desired-secret.js';
import { planAdoption } from '../pull-secret/plan-adoption.js';

/** Status lists are capped so the CR stays small at 10,000 namespaces (etcd refuses objects over ~1.5 MB). */
export const STATUS_LIST_CAP = 50;

export interface ClusterState {
  namespaces: NamespaceView[];
  /** Every Secret in the cluster named tcr.ips<cr>: ours and, where someone else made one, theirs. */
  secretsNamed: SecretView[];
  serviceAccounts: ServiceAccountView[];
  /** Recent failures that namespace jobs recorded for this CR (reason, message, since). */
  failures: FailedNamespace[];
  /** Install-wide: take over the TCR add-on's Secrets (plan-adoption.ts); the CR's annotation wins. */
  adoptAddonSecrets?: boolean;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface CrPlan {
  /** Namespaces whose state differs from what this CR wants: one namespace job each (fan-out). */
  namespacesToReconcile: string[];
  /**
   * Namespaces where only our Secret's content is stale (a rotation) and every ServiceAccount is already
   * right: the CR job rewrites those Secrets itself, within a budget, at one write each instead of a
   * namespace job's reads. Each carries the resourceVersion the write is guarded by.
   */
  secretUpdates: { namespace: string; resourceVersion: string }[];
  finalizer: 'add' | 'remove' | 'keep';
  /** The status to write, or undefined when it is already current (zero writes). */
  status: ImagePullSecretStatus | undefined;
  events: PlannedEvent[];
  /** Recorded failures of namespaces that are converged (or no longer wanted) now: to be forgotten. */
  staleFailures: string[];
  counts: { desired: number; success: number; conflicts: number; failed: number; pending: number };
}

/**
 * Plans a CR over the whole cluster: which namespaces need a job, its status, its finalizer and the
 * events worth emitting. Pure: `now` is passed in.
 */
export function planImagePullSecret(cr: CrView, state: ClusterState, now: Date): CrPlan {
  const secretName = secretNameFor(cr.name);
  const secretsByNs = new Map(
    state.secretsNamed.filter((s) => s.name === secretName).map((s) => [s.namespace, s]),
  );
  const sasByNs = new Map<string, ServiceAccountView[]>();
  for (const sa of state.serviceAccounts) {
    const list = sasByNs.get(sa.namespace) ?? [];
    list.push(sa);
    sasByNs.set(sa.namespace, list);
  }

  const toReconcile: string[] = [];
  const secretUpdates: CrPlan['secretUpdates'] = [];
  const conflicts: FailedNamespace[] = [];
  let desired = 0;
  let success = 0;
  /** Wanted namespaces not converged (yet): the only ones a recorded failure may still be shown for. */
  const pending = new Set<string>();
  for (const ns of state.namespaces) {
    if (ns.terminating) continue;
    const secret = secretsByNs.get(ns.name);
    const ours = secret?.ours === true;
    if (!wantsNamespace(cr, ns)) {
      if (ours) toReconcile.push(ns.name);
      continue;
    }
    desired += 1;
    if (secret && !ours) {
      // The add-on's Secret, and adoption allowed: the namespace job takes it over.
      if (cr.credential !== undefined && planAdoption(cr, secret, state.adoptAddonSecrets ?? false).adopt) {
        toReconcile.push(ns.name);
        continue;
      }
      conflicts.push({
        namespace: ns.name,
        reason: 'Conflict',
        message: `Secret ${secretName} exists and was not created by tcr-assistant; it is left untouched`,
      });
      continue;
    }
    // Converged: our Secret as wanted, every matching ServiceAccount lists it, and none that stopped
    // matching (narrowed serviceAccounts, skip annotation) still does.
    if (cr.credential === undefined) {
      pending.add(ns.name);
      continue;
    }
    const sas = sasByNs.get(ns.name) ?? [];
    const accountsRight = sas.every(
      (sa) => sa.imagePullSecrets.includes(secretName) === wantsServiceAccount(cr, sa),
    );
    const secretRight = secret !== undefined && isSecretConverged(secret, desiredSecretFor(cr, ns.name));
    if (secretRight && accountsRight) {
      success += 1;
      continue;
    }
    pending.add(ns.name);
    if (secret !== undefined && accountsRight)
      secretUpdates.push({ namespace: ns.name, resourceVersion: secret.resourceVersion });
    else toReconcile.push(ns.name);
  }

  // Recorded failures are history; the CR's own view is now: a namespace it counts as converged (or no longer
  // wants) is not failing, whichever job converged it (a ServiceAccount job, an in-place rewrite).
  const failed = state.failures.filter(
    (f) => pending.has(f.namespace) && !conflicts.some((c) => c.namespace === f.namespace),
  );
  const counts = {
    desired,
    success,
    conflicts: conflicts.length,
    failed: failed.length,
    pending: desired - success - conflicts.length,
  };
  const ready = readyCondition(cr, counts, conflicts, failed, now);
  const lastSyncedGeneration = ready.reason === 'Synced' ? cr.generation : cr.status.lastSyncedGeneration;
  const status: ImagePullSecretStatus = {
    ...(lastSyncedGeneration !== undefined ? { lastSyncedGeneration } : {}),
    secretsDesired: desired,
    secretsSuccess: success,
    observedGeneration: cr.generation,
    conditions: [ready],
    secretUpdateSuccessful: mostRecent(
      state.secretsNamed.filter((s) => s.ours && s.name === secretName),
      (s) => `${s.namespace}/${s.name}`,
    ),
    serviceAccountsModifySuccessful: mostRecent(
      state.serviceAccounts.filter((sa) => sa.imagePullSecrets.includes(secretName)),
      (sa) => `${sa.namespace}/${sa.name}`,
    ),
    failedNamespaces: [...conflicts, ...failed].slice(0, STATUS_LIST_CAP),
  };

  const ourSecretsLeft = [...secretsByNs.values()].some((s) => s.ours);
  let finalizer: CrPlan['finalizer'] = 'keep';
  if (!cr.deleting && !cr.finalizers.includes(FINALIZER)) finalizer = 'add';
  if (cr.deleting && cr.finalizers.includes(FINALIZER) && !ourSecretsLeft) finalizer = 'remove';

  return {
    namespacesToReconcile: toReconcile.sort(),
    secretUpdates: secretUpdates.sort((a, b) => a.namespace.localeCompare(b.namespace)),
    finalizer,
    // A CR on its way out keeps its last status: writing it would only race the finalizer removal.
    status: cr.deleting || statusEquals(cr.status, status) ? undefined : status,
    events: plannedEvents(previousReady(cr), ready, counts, cr),
    staleFailures: state.failures
      .filter((f) => !failed.includes(f) && !conflicts.some((c) => c.namespace === f.namespace))
      .map((f) => f.namespace),
    counts,
  };
}

/**
 * The namespaces this CR wants that have no Secret of that name in `state`: with the view's state (our Secrets
 * only), where someone else's Secret or one of ours not seen yet may be. Pure.
 */
export function unaccountedNamespaces(
  cr: CrView,
  state: Pick<ClusterState, 'namespaces' | 'secretsNamed'>,
): string[] {
  const secretName = secretNameFor(cr.name);
  const present = new Set(state.secretsNamed.filter((s) => s.name === secretName).map((s) => s.namespace));
  return state.namespaces
    .filter((ns) => wantsNamespace(cr, ns) && !present.has(ns.name))
    .map((ns) => ns.name)
    .sort();
}

function readyCondition(
  cr: CrView,
  counts: CrPlan['counts'],
  conflicts: FailedNamespace[],
  failed: FailedNamespace[],
  now: Date,
): Condition {
  const list = (items: FailedNamespace[]) =>
    items
      .slice(0, 5)
      .map((f) => f.namespace)
      .join(', ') + (items.length > 5 ? `, and ${items.length - 5} more` : '');
  let next: Pick<Condition, 'status' | 'reason' | 'message'>;
  if (cr.invalid !== undefined) {
    next = { status: 'False', reason: 'InvalidSpec', message: cr.invalid };
  } else if (!cr.deleting && cr.credential === undefined && cr.credentialProblem !== undefined) {
    next = { status: 'False', reason: 'CredentialRefused', message: cr.credentialProblem };
  } else if (!cr.deleting && cr.credential === undefined) {
    next = {
      status: 'False',
      reason: 'AwaitingCredential',
      message: `no token has been issued yet for registry ${cr.spec.tcr?.registryId ?? '?'}`,
    };
  } else if (cr.deleting) {
    next = {
      status: 'False',
      reason: 'Deleting',
      message: 'removing this CR’s Secrets and ServiceAccount entries',
    };
  } else if (counts.conflicts > 0) {
    next = {
      status: 'False',
      reason: 'Conflict',
      message: `${counts.conflicts} namespace(s) have a Secret of the same name that is not ours: ${list(conflicts)}`,
    };
  } else if (counts.failed > 0) {
    const first = failed[0]!;
    next = {
      status: 'False',
      reason: 'Failed',
      message: `${counts.failed} namespace(s) could not be converged: ${list(failed)} (${first.namespace}: ${first.message}); see status.failedNamespaces`,
    };
  } else if (counts.success < counts.desired) {
    next = {
      status: 'False',
      reason: 'Progressing',
      message: `${counts.success} of ${counts.desired} namespaces converged`,
    };
  } else {
    next = { status: 'True', reason: 'Synced', message: `all ${counts.desired} namespaces converged` };
  }
  const prev = previousReady(cr);
  const lastTransitionTime =
    prev && prev.status === next.status
      ? prev.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { type: 'Ready', ...next, observedGeneration: cr.generation, lastTransitionTime };
}

const previousReady = (cr: CrView) => cr.status.conditions?.find((c) => c.type === 'Ready');

/**
 * Events only on transitions an operator cares about: a generation converged everywhere for the first time
 * (not every Progressing → Synced as new namespaces arrive), a recovery, and every new problem.
 */
function plannedEvents(
  prev: Condition | undefined,
  next: Condition,
  counts: CrPlan['counts'],
  cr: CrView,
): PlannedEvent[] {
  if (prev?.reason === next.reason) return [];
  switch (next.reason) {
    case 'Synced':
      if (prev?.reason === 'Conflict' || prev?.reason === 'Failed' || prev?.reason === 'CredentialRefused')
        return [{ type: 'Normal', reason: 'Recovered', message: `recovered: ${next.message}` }];
      if (cr.status.lastSyncedGeneration === cr.generation) return [];
      return [
        {
          type: 'Normal',
          reason: 'Synced',
          message:
            cr.status.lastSyncedGeneration === undefined
              ? `first full sync: ${counts.desired} namespace(s) converged`
              : `generation ${cr.generation} converged in all ${counts.desired} namespace(s)`,
        },
      ];
    case 'Conflict':
    case 'Failed':
    case 'InvalidSpec':
    case 'CredentialRefused':
      return [{ type: 'Warning', reason: next.reason, message: next.message }];
    default:
      return [];
  }
}

function mostRecent<T extends { ourLastWrite?: string | undefined }>(
  items: T[],
  nameOf: (item: T) => string,
): NamespacedNameAt[] {
  return items
    .filter((i) => i.ourLastWrite !== undefined)
    .sort(
      (a, b) =>
        (b.ourLastWrite ?? '').localeCompare(a.ourLastWrite ?? '') || nameOf(a).localeCompare(nameOf(b)),
    )
    .slice(0, STATUS_LIST_CAP)
    .map((i) => ({ namespacedName: nameOf(i), updatedAt: i.ourLastWrite as string }));
}

/** Structural equality of the fields we own (order-sensitive lists are produced deterministically). */
export function statusEquals(a: ImagePullSecretStatus, b: ImagePullSecretStatus): boolean {
  const norm = (s: ImagePullSecretStatus) =>
    JSON.stringify({
      lastSyncedGeneration: s.lastSyncedGeneration,
      secretsDesired: s.secretsDesired ?? 0,
      secretsSuccess: s.secretsSuccess ?? 0,
      observedGeneration: s.observedGeneration ?? 0,
      conditions: (s.conditions ?? []).map((c) => ({
        type: c.type,
        status: c.status,
        observedGeneration: c.observedGeneration,
        lastTransitionTime: c.lastTransitionTime,
        reason: c.reason,
        message: c.message,
      })),
      secretUpdateSuccessful: s.secretUpdateSuccessful ?? [],
      serviceAccountsModifySuccessful: s.serviceAccountsModifySuccessful ?? [],
      failedNamespaces: (s.failedNamespaces ?? []).map((f) => ({
        namespace: f.namespace,
        reason: f.reason,
        message: f.message,
        since: f.since,
      })),
    });
  return norm(a) === norm(b);
}
