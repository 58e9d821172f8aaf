import { TerminalError } from '../../shared/errors.js';
import { secretNameFor } from '../../shared/names.js';
import type { Enqueue } from '../../shared/queue.js';
import { planImagePullSecret } from './plan-image-pull-secret.js';
import type { Action } from './ports.js';
import type { ReconcileDeps, ReconcileResult } from './reconcile-namespace.js';

const FANOUT_CHUNK = 1000;

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
  if (!cr) return { actions: [], crs: [name], skipped: 'imagepullsecret-not-found' };

  const [namespaces, secretsNamed, serviceAccounts, failures] = await Promise.all([
    cluster.listNamespaces(),
    cluster.listSecretsNamed(secretNameFor(name)),
    cluster.listServiceAccounts(),
    deps.failures.list(cluster.clusterId, name),
  ]);
  const plan = planImagePullSecret(cr, { namespaces, secretsNamed, serviceAccounts, failures }, deps.now());
  const actions: Action[] = [];
  const object = `ImagePullSecret ${name}`;

  // The finalizer goes on before any Secret is made, so that deleting the CR always cleans up.
  if (plan.finalizer === 'add') {
    await cluster.setFinalizer(cr, true);
    actions.push({ verb: 'patched', object, detail: 'finalizer added' });
  }
  if (fanOut && plan.namespacesToReconcile.length > 0) {
    const jobs: Enqueue[] = plan.namespacesToReconcile.map((ns) => ({
      key: { cluster: cluster.clusterId, kind: 'namespace', name: ns },
      trigger: 'fanout',
    }));
    for (let i = 0; i < jobs.length; i += FANOUT_CHUNK)
      await deps.queue.enqueue(jobs.slice(i, i + FANOUT_CHUNK));
    actions.push({ verb: 'noop', object, detail: `fan-out: ${jobs.length} namespace job(s)` });
  }
  if (plan.status) {
    await cluster.writeStatus(cr, plan.status);
    actions.push({
      verb: 'updated',
      object: `${object} status`,
      detail: `${plan.counts.success}/${plan.counts.desired} converged`,
    });
  }
  for (const event of plan.events) await cluster.emitEvent(cr, event);
  if (plan.finalizer === 'remove') {
    await cluster.setFinalizer(cr, false);
    actions.push({ verb: 'patched', object, detail: 'finalizer removed: cleanup complete' });
  }
  if (actions.length === 0) actions.push({ verb: 'noop', object });
  if (cr.invalid !== undefined)
    throw new TerminalError(`ImagePullSecret ${name} cannot be planned: ${cr.invalid}`);
  return { actions, crs: [name] };
}
