import { describe, expect, it } from 'vitest';
import { reconcileImagePullSecret } from '../../../../../functions/core/image-pull-secret/reconcile-image-pull-secret.js';
import { renderDockerConfigJson } from '../../../../../functions/core/pull-secret/docker-config.js';
import {
  crView,
  dockerCreds,
  harness,
  nsView,
  ourSecretView,
  saView,
} from '../../../../support/fake-cluster.js';

// A rotation: the CR job rewrites stale Secrets in place, within a count budget and a time budget per run, and
// continues in a follow-up run of itself for the rest.

function rotated(namespaces: number) {
  const h = harness();
  const old = crView('a', { password: 'old' });
  h.cluster.addCr(crView('a', { password: 'new' }));
  for (let i = 0; i < namespaces; i++) {
    const ns = `ns-${String(i).padStart(2, '0')}`;
    h.cluster.addNamespace(nsView(ns)).addServiceAccount(saView(ns, 'default', ['tcr.ipsa']));
    h.cluster.addSecret(ourSecretView(old, ns));
  }
  return h;
}

const isNew = (data: Record<string, string> | undefined) =>
  data?.['.dockerconfigjson'] === renderDockerConfigJson(dockerCreds('new'));

describe('rotation budget of the CR job', () => {
  it('rewrites every stale Secret in one run when the budgets allow', async () => {
    const h = rotated(10);
    await reconcileImagePullSecret({ ...h.deps, directUpdateBudget: 100 }, 'a', { fanOut: true });
    expect([...h.cluster.secrets.values()].every((s) => isNew(s.data))).toBe(true);
    expect(h.queue.items.some((i) => i.key.kind === 'imagepullsecret')).toBe(false);
  });

  it('stops starting rewrites when its time is up and continues in a follow-up run', async () => {
    const h = rotated(10);
    // Every call moves the clock by 10 ms; 35 ms of budget covers a few rewrites only.
    let t = Date.parse('2026-01-01T00:00:00Z');
    const now = () => {
      t += 10;
      return new Date(t);
    };
    await reconcileImagePullSecret({ ...h.deps, now, directUpdateBudget: 100, directUpdateMs: 35 }, 'a', {
      fanOut: true,
    });
    const fresh = [...h.cluster.secrets.values()].filter((s) => isNew(s.data)).length;
    expect(fresh).toBeGreaterThan(0);
    expect(fresh).toBeLessThan(10);
    expect(h.queue.items.map((i) => `${i.key.kind} ${i.key.name}`)).toContain('imagepullsecret a');
    // No namespace job for the ones left: they were not tried, the follow-up run takes them.
    expect(h.queue.items.some((i) => i.key.kind === 'namespace')).toBe(false);

    await reconcileImagePullSecret({ ...h.deps, directUpdateBudget: 100 }, 'a', { fanOut: true });
    expect([...h.cluster.secrets.values()].every((s) => isNew(s.data))).toBe(true);
  });

  it('rewrites each stale Secret once, and still hands a namespace whose ServiceAccount is wrong to a namespace job', async () => {
    const h = rotated(4);
    // ns-02's default ServiceAccount lost our entry: that namespace needs its namespace job as well.
    h.cluster.addServiceAccount(saView('ns-02', 'default', []));
    h.cluster.resetCounts();
    await reconcileImagePullSecret({ ...h.deps, directUpdateBudget: 100 }, 'a', { fanOut: true });
    expect([...h.cluster.secrets.values()].every((s) => isNew(s.data))).toBe(true);
    expect(h.cluster.calls.replaceSecret).toBe(4);
    expect(h.queue.items.filter((i) => i.key.kind === 'namespace').map((i) => i.key.name)).toEqual(['ns-02']);
  });
});
