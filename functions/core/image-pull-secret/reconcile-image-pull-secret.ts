import type { Enqueue } from '../../../shared/contracts/jobs.js';
import { REGISTRY_TOKENS_KEY } from '../../../shared/contracts/jobs.js';
import { FINALIZER } from '../../../shared/contracts/labels.js';
import { secretNameFor } from '../../../shared/contracts/names.js';
import { throwIfAborted } from '../../../shared/deadline.js';
import { describeError, TerminalError } from '../../../shared/errors.js';
import type { CrView } from '../model.js';
import type { Action, ReconcileDeps, ReconcileResult } from '../ports.js';
import { desiredSecretFor } from '../pull-secret/desired-secret.js';
import { scrubMessage } from '../scrub.js';
import { planContentRewrites } from './plan-content-rewrites.js';
import { type ClusterState, planImagePullSecret, unaccountedNamespaces } from './plan-image-pull-secret.js';

const FANOUT_CHUNK = 1000;

type SecretUpdate = { namespace: string; resourceVersion: string };
const REWRITE_CONCURRENCY = 16;

/**
 * Rewrites stale Secrets in place (guarded by resourceVersion), starting none after `deadline`. Returns the
 * namespaces where that did not work (changed meanwhile, gone, refused): a namespace job takes those over and
 * re-plans them from scratch; and how many were left for a follow-up run.
 */
async function rewriteSecrets(
  deps: ReconcileDeps,
  cr: NonNullable<Awaited<ReturnType<ReconcileDeps['cluster']['getImagePullSecret']>>>,
  updates: { namespace: string; resourceVersion: string }[],
  deadline: number,
): Promise<{ failed: string[]; done: number }> {
  const failed: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(REWRITE_CONCURRENCY, updates.length) }, async () => {
      while (next < updates.length && deps.now().getTime() < deadline && !deps.signal?.aborted) {
        const u = updates[next++]!;
        try {
          // The worker view reads it live until it has seen this write (a status count from it must not
          // take the old content for current).
          deps.view?.noteWrite?.(u.namespace, secretNameFor(cr.name));
          await deps.cluster.replaceSecret(desiredSecretFor(cr, u.namespace), u.resourceVersion);
        } catch (error) {
          // Out of time is not this Secret's failure: the job stops (and runs again from a fresh read).
          if (deps.signal?.aborted) return;
          // Not lost: the namespace job re-plans it from a fresh read (and records a failure if it persists).
          deps.log.debug(
            { namespace: u.namespace, err: scrubMessage(describeError(error)) },
            'in-place rewrite handed to a namespace job',
          );
          failed.push(u.namespace);
        }
      }
    }),
  );
  return { failed: failed.sort(), done: next };
}

/**
 * Reconciles one CR over the cluster. With `fanOut` (CR events, resync) it enqueues one namespace job per
 * namespace that is not converged, instead of writing 10,000 Secrets in one invocation; without it (the
 * coalesced status refresh after namespace jobs) it only updates status, events and the finalizer.
 */
export async function reconcileImagePullSecret(
  deps: ReconcileDeps,
  name: string,
  { fanOut }: { fanOut: boolean },
): Promise<ReconcileResult> {
  const { cluster } = deps;
  const cr = await cluster.getImagePullSecret(name);
  if (!cr) {
    return fanOut
      ? cleanUpAfterGoneCr(deps, name)
      : { actions: [], crs: [name], skipped: 'imagepullsecret-not-found' };
  }

  const rotating =
    fanOut && cr.credential && !cr.deleting && !cr.invalid && cr.finalizers.includes(FINALIZER);
  const deadline = deps.now().getTime() + (deps.directUpdateMs ?? Number.POSITIVE_INFINITY);
  // A rotation from the worker view: our Secrets are already known, so the rewrites start now and have the
  // API server to themselves; the cluster-wide lists (which the full plan below reads live, ADR-015) come
  // after them and find those Secrets done. Not for the resync, whose point is a fresh look.
  const viewed =
    rotating && deps.trigger !== 'resync' ? deps.view?.ourSecretsNamed(secretNameFor(name)) : undefined;
  let early: Promise<{ updates: SecretUpdate[]; failed: string[]; done: number }> | undefined;
  if (viewed) {
    const updates = planContentRewrites(cr, viewed.secrets, viewed.namespaceOf).slice(
      0,
      deps.directUpdateBudget,
    );
    const first = { updates, ...(await rewriteSecrets(deps, cr, updates, deadline)) };
    early = Promise.resolve(first);
    throwIfAborted(deps.signal, `ImagePullSecret ${name}`);
  }

  const readLive = async (): Promise<Omit<ClusterState, 'adoptAddonSecrets'>> => {
    // ServiceAccounts are the largest list and a Secret's content does not depend on them: a rotation not
    // planned from the view starts rewriting as soon as namespaces and Secrets are read.
    const saRead = cluster.listServiceAccounts();
    saRead.catch(() => {}); // observed below; never an unhandled rejection if an earlier read fails first
    const [namespaces, secretsNamed, failures] = await Promise.all([
      cluster.listNamespaces(),
      cluster.listSecretsNamed(secretNameFor(name)),
      deps.failures.list(cluster.clusterId, name),
    ]);
    if (rotating && !viewed) {
      // Without ServiceAccounts the plan lists every stale Secret of ours that is wanted: a superset of the
      // full plan's in-place rewrites (the rest go to namespace jobs, which then find the Secret done).
      const pre = planImagePullSecret(
        cr,
        { namespaces, secretsNamed, serviceAccounts: [], failures },
        deps.now(),
      );
      const updates = pre.secretUpdates.slice(0, deps.directUpdateBudget);
      early = rewriteSecrets(deps, cr, updates, deadline).then((r) => ({ updates, ...r }));
    }
    const serviceAccounts = await saRead.catch(async (error: unknown) => {
      await early;
      throw error;
    });
    return { namespaces, secretsNamed, serviceAccounts, failures };
  };
  const planFrom = (state: Omit<ClusterState, 'adoptAddonSecrets'>) => {
    throwIfAborted(deps.signal, `ImagePullSecret ${name}`);
    return planImagePullSecret(
      cr,
      { ...state, adoptAddonSecrets: deps.adoptAddonSecrets ?? false },
      deps.now(),
    );
  };

  // The status refresh after namespace jobs counts from the worker view when it can (no cluster-wide lists
  // per status job), and keeps that count only when it shows nothing in progress: the view lags, never
  // leads, so a count that is short of converged may be the view not having a write yet (no later status
  // job would correct it), and is read again live. A CR being deleted reads live (its finalizer's removal
  // depends on what is left).
  const counted = fanOut || cr.deleting ? undefined : await readStateFromView(deps, cr);
  let plan = counted ? planFrom(counted) : undefined;
  if (!plan || plan.counts.pending > plan.counts.failed) plan = planFrom(await readLive());
  const actions: Action[] = [];
  const object = `ImagePullSecret ${name}`;

  // The finalizer goes on before any Secret is made, so that deleting the CR always cleans up.
  if (plan.finalizer === 'add') {
    if ((await cluster.setFinalizer(cr, true)) === 'gone') {
      await early;
      return { actions: [], crs: [name], skipped: 'imagepullsecret-not-found' };
    }
    actions.push({ verb: 'patched', object, detail: 'finalizer added' });
  }
  if (fanOut) {
    const first = early ? await early : { updates: [], failed: [], done: 0 };
    const rewritten = new Set(first.updates.slice(0, first.done).map((u) => u.namespace));
    const remaining = plan.secretUpdates.filter((u) => !rewritten.has(u.namespace));
    const second = remaining.slice(0, Math.max(0, deps.directUpdateBudget - rewritten.size));
    const then = await rewriteSecrets(deps, cr, second, deadline);
    throwIfAborted(deps.signal, `ImagePullSecret ${name}`);
    const directCount = rewritten.size + then.done;
    const fallback = [...new Set([...first.failed, ...then.failed])].sort();
    const more = remaining.length > then.done;
    const toReconcile = [...new Set([...plan.namespacesToReconcile, ...fallback])];
    // The resync's point is a fresh look: its fan-out reads live too (ADR-015), not from the worker view that
    // may be what drifted.
    const jobs: Enqueue[] = toReconcile.map((ns) => ({
      key: { cluster: cluster.clusterId, kind: 'namespace', name: ns },
      trigger: deps.trigger === 'resync' ? 'resync' : 'fanout',
    }));
    // A spec.tcr CR without its token yet, or one going away: the fleet's token refresher has work (issue
    // the first token now rather than at its next scheduled run; revoke one nothing uses any more).
    if (
      cr.spec.tcr &&
      !cr.invalid &&
      ((cr.credential === undefined && cr.credentialProblem === undefined) || cr.deleting)
    ) {
      jobs.push({ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'fanout' });
    }
    // A spec.tcr CR whose spec changed (or that is going away) may change the nodes' private-endpoint map:
    // refresh it now rather than at the next periodic tick (minutes).
    if (cr.spec.tcr && !cr.invalid && (cr.deleting || cr.status.observedGeneration !== cr.generation)) {
      jobs.push({
        key: { cluster: cluster.clusterId, kind: 'private-endpoints', name: 'updater-config' },
        trigger: 'fanout',
      });
    }
    // Beyond the budget: this CR job runs again (after this one: BullMQ dedup) and continues from a fresh read.
    if (more)
      jobs.push({ key: { cluster: cluster.clusterId, kind: 'imagepullsecret', name }, trigger: 'fanout' });
    if (directCount > 0) {
      jobs.push({
        key: { cluster: cluster.clusterId, kind: 'imagepullsecret-status', name },
        trigger: 'status',
        delayMs: deps.statusDelayMs,
      });
    }
    for (let i = 0; i < jobs.length; i += FANOUT_CHUNK)
      await deps.queue.enqueue(jobs.slice(i, i + FANOUT_CHUNK));
    if (directCount > 0) {
      actions.push({
        verb: 'updated',
        object: `${directCount - fallback.length} Secret(s) ${secretNameFor(name)}`,
        detail: 'rewritten in place by the CR job',
      });
    }
    if (jobs.length > 0)
      actions.push({
        verb: 'noop',
        object,
        detail: `fan-out: ${jobs.length} job(s)${more ? ', continuing' : ''}`,
      });
  }
  if (plan.status) {
    throwIfAborted(deps.signal, `ImagePullSecret ${name}`);
    if ((await cluster.writeStatus(cr, plan.status)) === 'gone') {
      return { actions, crs: [name], skipped: 'imagepullsecret-not-found' };
    }
    actions.push({
      verb: 'updated',
      object: `${object} status`,
      detail: `${plan.counts.success}/${plan.counts.desired} converged`,
    });
  }
  for (const event of plan.events) await cluster.emitEvent(cr, event);
  await Promise.all(plan.staleFailures.map((ns) => deps.failures.clear(cluster.clusterId, name, ns)));
  if (plan.finalizer === 'remove' && (await cluster.setFinalizer(cr, false)) === 'done') {
    actions.push({ verb: 'patched', object, detail: 'finalizer removed: cleanup complete' });
  }
  if (actions.length === 0) actions.push({ verb: 'noop', object });
  if (cr.invalid !== undefined)
    throw new TerminalError(`ImagePullSecret ${name} cannot be planned: ${cr.invalid}`);
  return { actions, crs: [name] };
}

/** At most this many wanted namespaces without our Secret in the view are looked up live by a status job. */
const LIVE_CHECK_CAP = 20;

/**
 * A status refresh's state from the worker view (undefined: read live). The view holds only our Secrets, so a
 * wanted namespace without one may hold someone else's of that name (a conflict) or ours not seen yet: those
 * few are looked up live; more than LIVE_CHECK_CAP of them (a burst, a CR awaiting its token), or a view with
 * writes of ours not seen yet, and the whole state is read live as before.
 */
async function readStateFromView(
  deps: ReconcileDeps,
  cr: CrView,
): Promise<Omit<ClusterState, 'adoptAddonSecrets'> | undefined> {
  const viewed = deps.view?.stateFor?.(secretNameFor(cr.name));
  if (!viewed) return undefined;
  const unaccounted = unaccountedNamespaces(cr, viewed);
  if (unaccounted.length > LIVE_CHECK_CAP) return undefined;
  const [found, failures] = await Promise.all([
    Promise.all(unaccounted.map((ns) => deps.cluster.findSecret(ns, secretNameFor(cr.name)))),
    deps.failures.list(deps.cluster.clusterId, cr.name),
  ]);
  const live = found.filter((s) => s !== undefined);
  const replaced = new Set(live.map((s) => s.namespace));
  return {
    ...viewed,
    secretsNamed: [...viewed.secretsNamed.filter((s) => !replaced.has(s.namespace)), ...live],
    failures,
  };
}

/**
 * A CR that is gone (its event, or a resync): normally its finalizer made sure nothing of it is left. If the
 * finalizer was removed by hand, its Secrets and ServiceAccount entries stay (our Secrets carry no owner
 * reference for a garbage collector, ADR-003 Ownership): find the namespaces still holding either, and let
 * their namespace jobs clean up (they delete our Secrets no CR wants, and remove entries that point at nothing).
 */
async function cleanUpAfterGoneCr(deps: ReconcileDeps, name: string): Promise<ReconcileResult> {
  const secretName = secretNameFor(name);
  const [secrets, serviceAccounts] = await Promise.all([
    deps.cluster.listSecretsNamed(secretName),
    deps.cluster.listServiceAccounts(),
  ]);
  const namespaces = new Set([
    ...secrets.filter((s) => s.ours).map((s) => s.namespace),
    ...serviceAccounts.filter((sa) => sa.imagePullSecrets.includes(secretName)).map((sa) => sa.namespace),
  ]);
  const jobs: Enqueue[] = [...namespaces].sort().map((ns) => ({
    key: { cluster: deps.cluster.clusterId, kind: 'namespace', name: ns },
    trigger: 'fanout',
  }));
  for (let i = 0; i < jobs.length; i += FANOUT_CHUNK)
    await deps.queue.enqueue(jobs.slice(i, i + FANOUT_CHUNK));
  return {
    actions:
      jobs.length > 0
        ? [
            {
              verb: 'noop',
              object: `ImagePullSecret ${name}`,
              detail: `gone; cleaning up after it in ${jobs.length} namespace(s)`,
            },
          ]
        : [],
    crs: [name],
    skipped: 'imagepullsecret-not-found',
  };
}
