import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretNameFor } from '../../shared/contracts/names.js';
import { createCr, deleteCr, docker, patchCrSpec, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import {
  adminKubeConfig,
  createNamespace,
  createServiceAccount,
  rejectionOf,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { apiserverWriteCount, quietWriteCount } from '../support/metrics.js';
import { dockerConfigOf, pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// The seed's walkthrough, end to end: the sample CR with "*"/"*", a new namespace, a new ServiceAccount
// `kung`, a password edit, a full re-reconcile that must write nothing, and deletion cleanup.

// "*" covers every namespace of the run's cluster: after the relay's bursts (~700 namespaces) and with another
// suite running beside this one, a fan-out takes minutes on 2 cores. This test is about what is written,
// not how fast (the benchmark measures that).
const DRAIN_MS = 300_000;

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
let fx: FunctionsHarness;
const cr = uniqueName('imagepullsecret-sample');
const secret = secretNameFor(cr);

// Namespaces "*" covers: alive, and not opted out with the skip annotation (other test files make some).
const liveNamespaces = async () =>
  (await core.listNamespace()).items
    .filter(
      (n) =>
        !n.metadata?.deletionTimestamp && n.metadata?.annotations?.['tcr.tencentcloudcr.com/skip'] !== 'true',
    )
    .map((n) => n.metadata?.name ?? '');

beforeAll(async () => {
  fx = await startFunctions();
});
afterAll(async () => {
  await deleteCr(kc, cr).catch(() => {});
  await fx?.close();
});

describe('the seed walkthrough', { timeout: 400_000 }, () => {
  const ns1 = uniqueName('demo');
  const newns = uniqueName('newns');

  it('gives every namespace the Secret and every default ServiceAccount the entry, with equal status counts', async () => {
    await createNamespace(kc, ns1);
    await waitFor('default SA', () => core.readNamespacedServiceAccount({ namespace: ns1, name: 'default' }));
    await createCr(kc, cr, { namespaces: '*', serviceAccounts: '*', docker: docker() });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'added');
    await fx.drain(DRAIN_MS);

    const namespaces = await liveNamespaces();
    for (const ns of namespaces) {
      const s = await readSecret(kc, ns, secret);
      expect(s, `Secret in ${ns}`).toBeDefined();
      expect(s?.type).toBe('kubernetes.io/dockerconfigjson');
      const auth = dockerConfigOf(s!).auths['fanjiankong-bj.tencentcloudcr.com'];
      expect(auth).toEqual({
        username: '100012345678',
        password: 'tcr.jwt.token',
        auth: Buffer.from('100012345678:tcr.jwt.token').toString('base64'),
      });
      expect(await pullSecretsOf(kc, ns, 'default'), `default SA in ${ns}`).toContain(secret);
    }
    const status = await waitFor('status to count every namespace', async () => {
      const s = (await readCr(kc, cr)).status;
      return s?.secretsSuccess === namespaces.length ? s : undefined;
    });
    expect(status.secretsDesired).toBe(namespaces.length);
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Synced',
    });
    expect(status.secretUpdateSuccessful?.length).toBe(Math.min(50, namespaces.length));
    expect((await readCr(kc, cr)).metadata.finalizers).toContain('tcr.tencentcloudcr.com/cleanup');
  });

  it('gives a new namespace both, as soon as its events are processed', async () => {
    await createNamespace(kc, newns);
    await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: newns }, 'added');
    await waitFor('default SA in newns', () =>
      core.readNamespacedServiceAccount({ namespace: newns, name: 'default' }),
    );
    await fx.enqueue(
      { cluster: CLUSTER, kind: 'serviceaccount', namespace: newns, name: 'default' },
      'added',
    );
    await fx.drain(DRAIN_MS);
    expect(await readSecret(kc, newns, secret)).toBeDefined();
    expect(await pullSecretsOf(kc, newns, 'default')).toEqual([secret]);
  });

  it('gives a new ServiceAccount `kung` the entry, appended after entries others put there', async () => {
    await core.createNamespacedServiceAccount({
      namespace: newns,
      body: { metadata: { name: 'kung' }, imagePullSecrets: [{ name: 'someone-elses' }] },
    });
    await fx.enqueue({ cluster: CLUSTER, kind: 'serviceaccount', namespace: newns, name: 'kung' }, 'added');
    await fx.drain(DRAIN_MS);
    expect(await pullSecretsOf(kc, newns, 'kung')).toEqual(['someone-elses', secret]);
  });

  it('updates every Secret in place when the password is edited', async () => {
    const before = await readSecret(kc, ns1, secret);
    await patchCrSpec(kc, cr, { docker: docker('rotated.jwt.token') });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'modified');
    await fx.drain(DRAIN_MS);
    for (const ns of await liveNamespaces()) {
      const s = await readSecret(kc, ns, secret);
      expect(dockerConfigOf(s!).auths['fanjiankong-bj.tencentcloudcr.com']?.password, ns).toBe(
        'rotated.jwt.token',
      );
    }
    const after = await readSecret(kc, ns1, secret);
    expect(after?.metadata?.uid).toBe(before?.metadata?.uid);
    expect(after?.metadata?.resourceVersion).not.toBe(before?.metadata?.resourceVersion);
  });

  it('issues zero write requests when a converged cluster is re-reconciled in full', async () => {
    await fx.drain(DRAIN_MS);
    const namespaces = await liveNamespaces();
    const sas = (await core.listServiceAccountForAllNamespaces()).items;
    const clientWrites = await fx.writeCount();
    const serverWrites = await quietWriteCount(kc, ['secrets', 'serviceaccounts', 'imagepullsecrets']);

    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'resync');
    for (const ns of namespaces)
      await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'resync');
    for (const sa of sas) {
      await fx.enqueue(
        {
          cluster: CLUSTER,
          kind: 'serviceaccount',
          namespace: sa.metadata?.namespace ?? '',
          name: sa.metadata?.name ?? '',
        },
        'resync',
      );
    }
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret-status', name: cr }, 'resync');
    await fx.drain(DRAIN_MS);

    expect(await fx.writeCount()).toBe(clientWrites);
    expect(await apiserverWriteCount(kc, ['secrets', 'serviceaccounts', 'imagepullsecrets'])).toBe(
      serverWrites,
    );
  });

  it('issues zero write requests, and reads almost nothing, when the converged namespaces and ServiceAccounts are planned from the worker view', async () => {
    await fx.drain(DRAIN_MS);
    const view = fx.rt.views.get(CLUSTER);
    await waitFor('the worker view to be listed and watching', () =>
      (['namespace', 'serviceaccount', 'imagepullsecret', 'secret'] as const).every((k) => view?.isLive(k)),
    );
    const namespaces = await liveNamespaces();
    const sas = (await core.listServiceAccountForAllNamespaces()).items;
    const clientWrites = await fx.writeCount();
    const serverWrites = await quietWriteCount(kc, ['secrets', 'serviceaccounts', 'imagepullsecrets']);
    const readsBefore = await fx.readCount();

    // `modified`: the triggers the relay gives watch events (a resync reads live on purpose).
    for (const ns of namespaces)
      await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'modified');
    for (const sa of sas) {
      await fx.enqueue(
        {
          cluster: CLUSTER,
          kind: 'serviceaccount',
          namespace: sa.metadata?.namespace ?? '',
          name: sa.metadata?.name ?? '',
        },
        'modified',
      );
    }
    await fx.drain(DRAIN_MS);

    expect(await fx.writeCount()).toBe(clientWrites);
    expect(await apiserverWriteCount(kc, ['secrets', 'serviceaccounts', 'imagepullsecrets'])).toBe(
      serverWrites,
    );
    // Without the view each of these jobs reads 4 times; with it, only what changed meanwhile is read live.
    const jobs = namespaces.length + sas.length;
    expect((await fx.readCount()) - readsBefore).toBeLessThan(jobs / 4);
  });

  it('removes its Secrets and ServiceAccount entries when the CR is deleted, keeping entries of others', async () => {
    await deleteCr(kc, cr);
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'deleted');
    await fx.drain(DRAIN_MS);
    await waitFor(
      'the CR to be gone (finalizer removed)',
      async () => statusOf(await rejectionOf(readCr(kc, cr))) === 404,
    );
    for (const ns of await liveNamespaces()) {
      expect(await readSecret(kc, ns, secret), ns).toBeUndefined();
      expect(await pullSecretsOf(kc, ns, 'default'), ns).not.toContain(secret);
    }
    expect(await pullSecretsOf(kc, newns, 'kung')).toEqual(['someone-elses']);
  });
});

describe('a namespace deleted while its job runs', () => {
  it('completes without error and without retries', async () => {
    const ns = uniqueName('vanishing');
    const crName = uniqueName('vanish-cr');
    await createNamespace(kc, ns);
    await createServiceAccount(kc, ns, 'app');
    await createCr(kc, crName, { namespaces: ns, docker: docker() });
    try {
      // Deletion and the job race; whichever wins, the job must end as success.
      await Promise.all([
        core.deleteNamespace({ name: ns }),
        fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'added'),
      ]);
      await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'modified');
      await fx.drain(DRAIN_MS);
      const failed = await fx.rt.queue.getFailed();
      expect(failed.map((j) => j.failedReason)).toEqual([]);
      await waitFor(
        `namespace ${ns} gone`,
        async () => statusOf(await rejectionOf(core.readNamespace({ name: ns }))) === 404,
      );
    } finally {
      await deleteCr(kc, crName);
      await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: crName }, 'deleted');
      await fx.drain(DRAIN_MS);
    }
    // Its drains may take DRAIN_MS each: above them, as the walkthrough's.
  }, 400_000);
});
