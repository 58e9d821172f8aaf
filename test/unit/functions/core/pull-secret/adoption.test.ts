import { describe, expect, it } from 'vitest';
import { planImagePullSecret } from '../../../../../functions/core/image-pull-secret/plan-image-pull-secret.js';
import { reconcileImagePullSecret } from '../../../../../functions/core/image-pull-secret/reconcile-image-pull-secret.js';
import { reconcileNamespace } from '../../../../../functions/core/namespace/reconcile-namespace.js';
import {
  addonShapeProblem,
  mayAdopt,
  planAdoption,
} from '../../../../../functions/core/pull-secret/plan-adoption.js';
import { CR_UID_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../../../../shared/contracts/labels.js';
import { secretNameFor } from '../../../../../shared/contracts/names.js';
import {
  addonSecretView,
  crView,
  FakeCluster,
  FIXED_NOW,
  foreignSecretView,
  harness,
  nsView,
  saView,
} from '../../../../support/fake-cluster.js';

const CR = 'imagepullsecret-sample';
const NAME = secretNameFor(CR);
const NS = 'demo';

describe('addonShapeProblem: only a Secret exactly as the TCR add-on makes it may be adopted', () => {
  const owner = (kind: string, name: string, apiVersion = 'tcr.tencentcloudcr.com/v1') => ({
    apiVersion,
    kind,
    name,
  });
  it.each([
    { title: "the add-on's Secret", secret: addonSecretView(NS, CR), problem: undefined },
    {
      title: 'owned by the CR of that name (as the add-on may set it)',
      secret: addonSecretView(NS, CR, { owners: [owner('ImagePullSecret', CR)] }),
      problem: undefined,
    },
    {
      title: 'owned by another CR',
      secret: addonSecretView(NS, CR, { owners: [owner('ImagePullSecret', 'other')] }),
      problem: 'it is owned by ImagePullSecret other',
    },
    {
      title: 'owned by something else',
      secret: addonSecretView(NS, CR, { owners: [owner('Deployment', 'x', 'apps/v1')] }),
      problem: 'it is owned by Deployment x',
    },
    {
      title: 'managed by another tool',
      secret: addonSecretView(NS, CR, { labels: { [MANAGED_BY_LABEL]: 'Helm' } }),
      problem: 'it is managed by Helm',
    },
    {
      title: 'an Opaque Secret',
      secret: addonSecretView(NS, CR, { type: 'Opaque' }),
      problem: 'its type is Opaque, not kubernetes.io/dockerconfigjson',
    },
    {
      title: 'more data than a pull Secret',
      secret: addonSecretView(NS, CR, { data: { '.dockerconfigjson': 'e30=', extra: 'eA==' } }),
      problem: 'its data keys are [.dockerconfigjson, extra], not [.dockerconfigjson]',
    },
    {
      title: 'another name',
      secret: { ...addonSecretView(NS, CR), name: 'tcr.ipsother' },
      problem: `its name is not ${NAME}`,
    },
    {
      title: 'already ours',
      secret: { ...addonSecretView(NS, CR), ours: true },
      problem: 'it is already ours',
    },
  ])('$title', ({ secret, problem }) => {
    // The fake's view gives data keys as the adapter does (from the stored Secret).
    const view = { ...secret, dataKeys: Object.keys(secret.data).sort() };
    expect(addonShapeProblem(view, CR)).toBe(problem);
  });
});

describe('mayAdopt / planAdoption: install-wide switch, the CR annotation wins', () => {
  const secret = { ...addonSecretView(NS, CR), dataKeys: ['.dockerconfigjson'] };
  it.each([
    { installWide: false, annotation: undefined, adopt: false },
    { installWide: true, annotation: undefined, adopt: true },
    { installWide: false, annotation: true, adopt: true },
    { installWide: true, annotation: false, adopt: false },
  ])('install-wide $installWide, annotation $annotation → $adopt', ({ installWide, annotation, adopt }) => {
    const cr = { ...crView(CR), adoptAddonSecrets: annotation };
    expect(mayAdopt(cr, installWide)).toBe(adopt);
    expect(planAdoption(cr, secret, installWide).adopt).toBe(adopt);
  });
});

function clusterWithAddonSecret(addon = addonSecretView(NS, CR)): FakeCluster {
  const fake = new FakeCluster();
  fake.addNamespace(nsView(NS));
  fake.addCr(crView(CR));
  fake.addSecret(addon);
  // The add-on had already listed its Secret on the default ServiceAccount.
  fake.addServiceAccount(saView(NS, 'default', [NAME]));
  return fake;
}

describe('reconcile with an add-on Secret in the way', () => {
  it('adoption off: Conflict, the Secret untouched, zero writes to it', async () => {
    const h = harness(clusterWithAddonSecret());
    const before = h.cluster.secret(NS, NAME);
    const result = await reconcileNamespace(h.deps, NS);
    expect(result.actions).toContainEqual(expect.objectContaining({ verb: 'conflict' }));
    expect(h.cluster.secret(NS, NAME)).toEqual(before);
    expect(h.cluster.callsOf('replaceSecret')).toBe(0);
    const plan = planImagePullSecret(
      crView(CR),
      {
        namespaces: [nsView(NS)],
        secretsNamed: await h.cluster.listSecretsNamed(NAME),
        serviceAccounts: await h.cluster.listServiceAccounts(),
        failures: [],
      },
      FIXED_NOW,
    );
    expect(plan.counts).toMatchObject({ desired: 1, success: 0, conflicts: 1 });
  });

  it('adoption on: the Secret becomes ours with our content; the ServiceAccount keeps its one entry', async () => {
    const h = harness(clusterWithAddonSecret());
    const result = await reconcileNamespace({ ...h.deps, adoptAddonSecrets: true }, NS);
    expect(result.actions).toContainEqual({
      verb: 'updated',
      object: `Secret ${NS}/${NAME}`,
      detail: "adopted: the TCR add-on's Secret, now ours",
    });
    const adopted = h.cluster.secret(NS, NAME);
    expect(adopted?.ours).toBe(true);
    expect(adopted?.labels[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE);
    expect(adopted?.labels[CR_UID_LABEL]).toBe(`uid-cr-${CR}`);
    // The add-on's owner reference went with its Secret: ours carry none (ADR-003 Ownership).
    expect(adopted?.owners).toEqual([]);
    expect(h.cluster.pullSecretsOf(NS, 'default')).toEqual([NAME]);
    // Converged afterwards: the next run writes nothing.
    h.cluster.resetCounts();
    await reconcileNamespace({ ...h.deps, adoptAddonSecrets: true }, NS);
    expect(h.cluster.writeCalls()).toBe(0);
  });

  it("the CR's annotation alone allows it; and forbids it against the install-wide setting", async () => {
    const allowed = clusterWithAddonSecret();
    allowed.crs.get(CR)!.adoptAddonSecrets = true;
    const h1 = harness(allowed);
    await reconcileNamespace(h1.deps, NS);
    expect(allowed.secret(NS, NAME)?.ours).toBe(true);

    const forbidden = clusterWithAddonSecret();
    forbidden.crs.get(CR)!.adoptAddonSecrets = false;
    const h2 = harness(forbidden);
    const result = await reconcileNamespace({ ...h2.deps, adoptAddonSecrets: true }, NS);
    expect(result.actions).toContainEqual(expect.objectContaining({ verb: 'conflict' }));
    expect(forbidden.secret(NS, NAME)?.ours).toBe(false);
  });

  it("a Secret of that name that is not the add-on's stays a Conflict even with adoption on, and says why", async () => {
    const h = harness(clusterWithAddonSecret(foreignSecretView(NS, NAME)));
    const result = await reconcileNamespace({ ...h.deps, adoptAddonSecrets: true }, NS);
    expect(result.actions).toContainEqual({
      verb: 'conflict',
      object: `Secret ${NS}/${NAME}`,
      detail: `a Secret of this name exists and is not ours (not the TCR add-on's Secret: its data keys are [], not [.dockerconfigjson])`,
    });
    expect(h.cluster.callsOf('replaceSecret')).toBe(0);
  });

  it('the CR job fans out to namespaces holding an adoptable Secret (not counted as conflicts)', async () => {
    const h = harness(clusterWithAddonSecret());
    await reconcileImagePullSecret({ ...h.deps, adoptAddonSecrets: true }, CR, { fanOut: true });
    const keys = h.queue.batches.flat().map((e) => `${e.key.kind}:${e.key.name}`);
    expect(keys).toContain(`namespace:${NS}`);
    const off = harness(clusterWithAddonSecret());
    await reconcileImagePullSecret(off.deps, CR, { fanOut: true });
    expect(off.queue.batches.flat().map((e) => `${e.key.kind}:${e.key.name}`)).not.toContain(
      `namespace:${NS}`,
    );
  });
});
