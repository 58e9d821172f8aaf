import type { Enqueue } from '../../../shared/contracts/jobs.js';
import { throwIfAborted } from '../../../shared/deadline.js';
import { describeError, TerminalError } from '../../../shared/errors.js';
import type { Action, ReconcileDeps, ReconcileResult } from '../ports.js';
import { addonShapeProblem } from '../pull-secret/plan-adoption.js';
import { scrubMessage } from '../scrub.js';
import {
  danglingCandidates,
  isNoop,
  type NamespacePlan,
  type NamespaceState,
  planNamespace,
} from './plan-namespace.js';

/**
 * Converges one namespace with every ImagePullSecret: read → plan (pure) → apply → follow up with a
 * (coalesced) status refresh of the CRs it touched.
 */
export async function reconcileNamespace(deps: ReconcileDeps, name: string): Promise<ReconcileResult> {
  const { cluster } = deps;
  const [namespace, crs] = await Promise.all([cluster.getNamespace(name), cluster.listImagePullSecrets()]);
  const live = namespace !== undefined && !namespace.terminating;
  const [ourSecrets, serviceAccounts] = live
    ? await Promise.all([cluster.listOurSecrets(name), cluster.listServiceAccounts(name)])
    : [[], []];

  const plan = planNamespace(
    name,
    await withDanglingCheck(cluster, name, {
      namespace,
      crs,
      ourSecrets,
      serviceAccounts,
      adoptAddonSecrets: deps.adoptAddonSecrets ?? false,
    }),
  );
  if (plan.skipped) return { actions: [], namespace: name, crs: [], skipped: plan.skipped };
  throwIfAborted(deps.signal, `namespace ${name}`);

  let actions: Action[];
  try {
    actions = await applyNamespacePlan(deps, plan);
  } catch (error) {
    await recordFailure(deps, plan, error);
    throw error;
  }
  await followUp(deps, plan);
  return { actions, namespace: name, crs: plan.wantedBy };
}

/**
 * Adds which dangling-looking entries (`tcr.ips<x>`, no CR `x`, no Secret of ours) name a Secret that exists
 * here: only entries that point at nothing are removed. Costs a read only when there is such an entry.
 */
export async function withDanglingCheck(
  cluster: ReconcileDeps['cluster'],
  namespace: string,
  state: NamespaceState,
): Promise<NamespaceState> {
  const candidates = danglingCandidates(state);
  if (candidates.length === 0 || !state.namespace || state.namespace.terminating) return state;
  return { ...state, presentSecretNames: await cluster.secretNamesPresent(namespace, candidates) };
}

/** A failure nothing will retry becomes visible in each wanting CR's status (failedNamespaces, Ready). */
async function recordFailure(deps: ReconcileDeps, plan: NamespacePlan, error: unknown): Promise<void> {
  const terminal = error instanceof TerminalError;
  if (!terminal && !deps.isFinalAttempt) return;
  const failure = {
    namespace: plan.namespace,
    reason: terminal ? 'Failed' : 'RetriesExhausted',
    message: scrubMessage(describeError(error)).slice(0, 1000),
    since: deps
      .now()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z'),
  };
  const crs = [...new Set([...plan.wantedBy, ...plan.affectedCrs])];
  await Promise.all(crs.map((cr) => deps.failures.record(deps.cluster.clusterId, cr, failure)));
  await deps.queue.enqueue(
    crs.map((cr) => ({
      key: { cluster: deps.cluster.clusterId, kind: 'imagepullsecret-status', name: cr },
      trigger: 'status',
      delayMs: deps.statusDelayMs,
    })),
  );
}

/**
 * Applies a namespace plan in crash-safe order: Secrets first (an entry must never name a Secret we have
 * not made), then ServiceAccount patches, then deletions (entries go before the Secret they name).
 * Errors propagate: the queue retries the job, which re-reads and re-plans.
 */
export async function applyNamespacePlan(deps: ReconcileDeps, plan: NamespacePlan): Promise<Action[]> {
  const { cluster } = deps;
  const ns = plan.namespace;
  const actions: Action[] = plan.unchanged.map((name) => ({ verb: 'noop', object: `Secret ${ns}/${name}` }));
  const conflicted = new Set<string>();

  for (const write of plan.writes) {
    const object = `Secret ${ns}/${write.secret.name}`;
    throwIfAborted(deps.signal, object);
    if (write.op === 'update') {
      await cluster.replaceSecret(write.secret, write.resourceVersion);
      actions.push({ verb: 'updated', object });
      continue;
    }
    const result = await cluster.createSecret(write.secret);
    if (result === 'namespace-gone') {
      actions.push({ verb: 'skipped', object, detail: 'namespace is gone or terminating' });
      return actions;
    }
    if (result === 'conflict') {
      const adoption = write.mayAdopt ? await adoptSecret(deps, write) : undefined;
      if (adoption === 'adopted') {
        actions.push({ verb: 'updated', object, detail: "adopted: the TCR add-on's Secret, now ours" });
        continue;
      }
      conflicted.add(write.cr);
      actions.push({
        verb: 'conflict',
        object,
        detail: `a Secret of this name exists and is not ours${adoption ? ` (${adoption})` : ''}`,
      });
    } else if (result === 'exists') {
      // Another job of ours made it from the same CR state; a CR change since then fans out again.
      actions.push({ verb: 'noop', object, detail: 'created concurrently by another job' });
    } else actions.push({ verb: 'created', object });
  }

  throwIfAborted(deps.signal, `namespace ${ns}`);
  await Promise.all(
    plan.serviceAccountPatches.map(async (patch) => {
      const add = patch.add.filter((a) => !conflicted.has(a.cr)).map((a) => a.secret);
      if (add.length === 0 && patch.remove.length === 0) return;
      const result = await cluster.patchServiceAccountPullSecrets(patch.serviceAccount, add, patch.remove);
      const detail = [...add.map((a) => `+${a}`), ...patch.remove.map((r) => `-${r}`)].join(' ');
      actions.push({
        verb: result === 'gone' ? 'skipped' : result === 'unchanged' ? 'noop' : 'patched',
        object: `ServiceAccount ${ns}/${patch.name}`,
        detail: result === 'gone' ? `gone (${detail})` : detail,
      });
    }),
  );

  for (const del of plan.deletes) {
    throwIfAborted(deps.signal, `Secret ${ns}/${del.name}`);
    const result = await cluster.deleteSecret(ns, del.name, del.uid, del.resourceVersion);
    actions.push({ verb: result === 'gone' ? 'noop' : 'deleted', object: `Secret ${ns}/${del.name}` });
  }
  return actions;
}

/**
 * Takes over the Secret in the way of a create when it has the TCR add-on's shape: replaced by ours, guarded
 * by the resourceVersion just read (a concurrent change fails with a retryable 409 and the job re-plans).
 * Returns 'adopted', or why not.
 */
async function adoptSecret(
  deps: ReconcileDeps,
  write: Extract<NamespacePlan['writes'][number], { op: 'create' }>,
): Promise<string> {
  const existing = await deps.cluster.findSecret(write.secret.namespace, write.secret.name);
  if (!existing) return 'it disappeared; the next run creates ours';
  const problem = addonShapeProblem(existing, write.cr);
  if (problem) return `not the TCR add-on's Secret: ${problem}`;
  await deps.cluster.replaceSecret(write.secret, existing.resourceVersion);
  deps.log.info(
    { namespace: write.secret.namespace, secret: write.secret.name, cr: write.cr },
    "adopted the TCR add-on's Secret",
  );
  return 'adopted';
}

/** Clears recorded failures of this namespace and schedules one coalesced status refresh per touched CR. */
async function followUp(deps: ReconcileDeps, plan: NamespacePlan): Promise<void> {
  const crs = new Set([...plan.wantedBy, ...plan.affectedCrs]);
  await Promise.all([...crs].map((cr) => deps.failures.clear(deps.cluster.clusterId, cr, plan.namespace)));
  if (isNoop(plan)) return;
  const items: Enqueue[] = plan.affectedCrs.map((cr) => ({
    key: { cluster: deps.cluster.clusterId, kind: 'imagepullsecret-status', name: cr },
    trigger: 'status',
    delayMs: deps.statusDelayMs,
  }));
  await deps.queue.enqueue(items);
}
