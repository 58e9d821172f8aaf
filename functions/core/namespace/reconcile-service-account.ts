import type { ReconcileDeps, ReconcileResult } from '../ports.js';
import { planNamespace } from './plan-namespace.js';
import { applyNamespacePlan, withDanglingCheck } from './reconcile-namespace.js';

/**
 * Converges one ServiceAccount (and the Secrets it needs) without touching the rest of the namespace.
 * Deletions are left to a namespace job: removing a Secret safely needs every ServiceAccount's entry
 * gone first, which only a namespace-wide view can guarantee.
 */
export async function reconcileServiceAccount(
  deps: ReconcileDeps,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const { cluster } = deps;
  const [ns, crs, sa] = await Promise.all([
    cluster.getNamespace(namespace),
    cluster.listImagePullSecrets(),
    cluster.getServiceAccount(namespace, name),
  ]);
  if (!ns || ns.terminating) return { actions: [], namespace, crs: [], skipped: 'namespace-not-found' };
  if (!sa) return { actions: [], namespace, crs: [], skipped: 'serviceaccount-not-found' };
  const ourSecrets = await cluster.listOurSecrets(namespace);

  const state = await withDanglingCheck(cluster, namespace, {
    namespace: ns,
    crs,
    ourSecrets,
    serviceAccounts: [sa],
  });
  const plan = planNamespace(namespace, state);
  const needsNamespaceJob = plan.deletes.length > 0;
  const actions = await applyNamespacePlan(deps, { ...plan, deletes: [] });

  const follow = [
    ...plan.affectedCrs.map((cr) => ({
      key: { cluster: cluster.clusterId, kind: 'imagepullsecret-status' as const, name: cr },
      trigger: 'status' as const,
      delayMs: deps.statusDelayMs,
    })),
    ...(needsNamespaceJob
      ? [
          {
            key: { cluster: cluster.clusterId, kind: 'namespace' as const, name: namespace },
            trigger: 'fanout' as const,
          },
        ]
      : []),
  ];
  if (actions.some((a) => a.verb !== 'noop') || needsNamespaceJob) await deps.queue.enqueue(follow);
  return { actions, namespace, crs: plan.wantedBy };
}
