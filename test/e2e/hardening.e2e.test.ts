import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { KubeCluster } from '../../functions/adapters/kube/kube-cluster.js';
import { KubeSystemObjects } from '../../functions/adapters/kube/kube-system-objects.js';
import type { CrView } from '../../functions/core/model.js';
import { tokenSecretName } from '../../functions/core/registry-tokens/token-store.js';
import { runJob } from '../../functions/core/run-job.js';
import { FUNCTIONS_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/contracts/jobs.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/contracts/names.js';
import { UPDATER_CONFIG_MAP_NAME } from '../../shared/contracts/updater-config.js';
import { createCr, deleteCr, docker, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import {
  adminKubeConfig,
  createNamespace,
  createServiceAccount,
  impersonatingKubeConfig,
  rejectionOf,
  serviceAccountUser,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { dockerConfigOf, pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// Regressions of the fault-and-abuse pass (issue 14), against the real control plane and Redis: the functions
// run as their ServiceAccount, the Tencent Cloud API is the emulator behind the real SDK.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const functionsKc = impersonatingKubeConfig(serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT));

const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-hard${randomBytes(3).toString('hex')}`;
const OTHER_REGISTRY = `tcr-hardo${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDHARD${randomBytes(10).toString('hex').toUpperCase()}`;
const SECRET_KEY = `hardKey${randomBytes(16).toString('hex')}`;
const SERVER = 'hardening.tencentcloudcr.com';

let emulator: TencentEmulator;
let fx: FunctionsHarness;
const crs: string[] = [];

beforeAll(async () => {
  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [
      { registryId: REGISTRY, region: REGION },
      { registryId: OTHER_REGISTRY, region: REGION },
    ],
    internalEndpoints: {
      [REGISTRY]: [{ vpcId: 'vpc-hard1', subnetId: 'subnet-hard1', accessIp: '10.30.0.5' }],
    },
  });
  fx = await startFunctions(
    { TOKEN_REVOKE_GRACE_SECONDS: '3600' },
    {
      tencentEnv: {
        TENCENTCLOUD_SECRET_ID: SECRET_ID,
        TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
        TENCENTCLOUD_ENDPOINT: emulator.endpoint,
        TENCENTCLOUD_PROTOCOL: 'http://',
        TENCENTCLOUD_TIMEOUT_SECONDS: 5,
      },
    },
  );
});

afterAll(async () => {
  for (const cr of crs) {
    await deleteCr(kc, cr).catch(() => {});
    await fx?.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'deleted');
  }
  await fx?.drain().catch(() => {});
  await fx?.enqueue({ ...REGISTRY_TOKENS_KEY });
  await fx?.drain().catch(() => {});
  await core
    .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
    .catch(() => {});
  await fx?.close();
  await emulator?.stop();
});

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const ns = uniqueName(prefix);
  await createNamespace(kc, ns, labels);
  await waitFor(`default SA in ${ns}`, () =>
    core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }),
  );
  return ns;
}

async function newCr(spec: Record<string, unknown>, name = uniqueName('hard')): Promise<string> {
  crs.push(name);
  await createCr(kc, name, spec);
  return name;
}

const reconcileCr = async (name: string) => {
  await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name }, 'added');
  await fx.drain();
};

const readyOf = async (name: string) =>
  (await readCr(kc, name)).status?.conditions?.find((c) => c.type === 'Ready');

async function eventsOf(cr: string): Promise<{ type: string; reason: string; message: string }[]> {
  const list = await core.listNamespacedEvent({
    namespace: 'default',
    fieldSelector: `involvedObject.name=${cr}`,
  });
  return list.items.map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '' }));
}

async function storedToken(key: string): Promise<string | undefined> {
  const secret = await readSecret(kc, SYSTEM_NAMESPACE, tokenSecretName(key));
  return secret && Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
}

const passwordIn = async (ns: string, cr: string) => {
  const secret = await readSecret(kc, ns, secretNameFor(cr));
  return secret && dockerConfigOf(secret).auths[SERVER]?.password;
};

describe('credentials: one CR cannot poison another team’s token (items 3 and 9)', () => {
  it('rotates the owner’s token while another CR names an API-key Secret that does not exist; that CR is refused, visibly', async () => {
    const nsOwner = await namespace('owner');
    const nsOther = await namespace('other');
    const owner = await newCr({
      namespaces: nsOwner,
      docker: { server: SERVER },
      tcr: { registryId: REGISTRY, region: REGION },
    });
    await reconcileCr(owner);
    const first = await waitFor('the owner’s token in its namespace', () => passwordIn(nsOwner, owner));
    expect(await storedToken(`${REGISTRY}.longterm`)).toBe(first);

    // A CR-only user names the same registry and an API-key Secret that is not there.
    const intruder = await newCr({
      namespaces: nsOther,
      docker: { server: SERVER },
      tcr: {
        registryId: REGISTRY,
        region: REGION,
        credentialsSecretRef: { namespace: SYSTEM_NAMESPACE, name: uniqueName('no-such-key') },
      },
    });
    await reconcileCr(intruder);

    await fx.rt.tokenReports.requestRotation([REGISTRY]);
    await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
    await fx.drain();
    const rotated = await waitFor('the rotated token in the owner’s namespace', async () => {
      const now = await passwordIn(nsOwner, owner);
      return now && now !== first ? now : undefined;
    });
    expect(await storedToken(`${REGISTRY}.longterm`)).toBe(rotated);
    const refreshes = await listAudit(fx.rt.redis, `${fx.prefix}:audit`, { cluster: 'fleet' });
    expect(refreshes.at(-1)?.outcome).toBe('success');

    await reconcileCr(owner);
    expect(await readyOf(owner)).toMatchObject({ status: 'True', reason: 'Synced' });
    const refused = await waitFor('the intruder CR to say why', async () => {
      await reconcileCr(intruder);
      const ready = await readyOf(intruder);
      return ready?.reason === 'CredentialRefused' ? ready : undefined;
    });
    expect(refused.status).toBe('False');
    expect(refused.message).toMatch(/no-such-key.*does not exist/);
    expect(
      (await eventsOf(intruder)).filter((e) => e.type === 'Warning' && e.reason === 'CredentialRefused'),
    ).toHaveLength(1);
    // Its namespace got nothing: a CR whose own key source is unusable is not served.
    expect(await readSecret(kc, nsOther, secretNameFor(intruder))).toBeUndefined();
  });

  it('says on the CR, with a Warning Event, that a credentialsSecretRef outside tcr-assistant-system is refused', async () => {
    const ns = await namespace('kube-system-ref');
    const cr = await newCr({
      namespaces: ns,
      docker: { server: SERVER },
      tcr: {
        registryId: OTHER_REGISTRY,
        region: REGION,
        credentialsSecretRef: { namespace: 'kube-system', name: 'tcr-api-key' },
      },
    });
    await reconcileCr(cr);
    const ready = await waitFor('a refusal on the CR', async () => {
      const r = await readyOf(cr);
      return r?.reason === 'CredentialRefused' ? r : undefined;
    });
    expect(ready.message).toMatch(/kube-system.*must be in namespace tcr-assistant-system/);
    expect((await eventsOf(cr)).some((e) => e.type === 'Warning' && e.reason === 'CredentialRefused')).toBe(
      true,
    );
  });
});

describe('status derived from what the CR job observes (items 4 and 10: scrubbed names)', () => {
  it('drops a recorded failure once the namespace is converged by another path, and keeps long CR names readable', async () => {
    // Lower-case letters and digits only: the kind of name the credential scrubber used to take for base64.
    const name = `longname${'abcdefghij0123456789'.repeat(3)}${randomBytes(3).toString('hex')}`;
    const ns = uniqueName('quota');
    await createNamespace(kc, ns);
    // No Secret may be created here: the namespace job fails terminally (403) and records it for the CR.
    await core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'no-secrets' }, spec: { hard: { secrets: '0' } } },
    });
    // The local controller-manager runs no quota controller: set the usage it would have computed, so that
    // admission enforces the quota.
    await core.patchNamespacedResourceQuotaStatus(
      {
        namespace: ns,
        name: 'no-secrets',
        body: { status: { hard: { secrets: '0' }, used: { secrets: '0' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const cr = await newCr({ namespaces: ns, serviceAccounts: 'app', docker: docker() }, name);
    await reconcileCr(cr);
    const failed = await waitFor('the failure in the CR status', async () => {
      const s = (await readCr(kc, cr)).status;
      return s?.failedNamespaces?.length ? s : undefined;
    });
    expect(failed.failedNamespaces?.[0]?.namespace).toBe(ns);
    expect(failed.failedNamespaces?.[0]?.message).toContain(secretNameFor(cr));
    expect(failed.failedNamespaces?.[0]?.message).not.toContain('[redacted]');

    // The quota goes; the namespace converges through its ServiceAccount's job alone (no namespace job).
    await core.deleteNamespacedResourceQuota({ namespace: ns, name: 'no-secrets' });
    await createServiceAccount(kc, ns, 'app');
    await fx.enqueue({ cluster: CLUSTER, kind: 'serviceaccount', namespace: ns, name: 'app' }, 'added');
    await fx.drain();
    expect(await pullSecretsOf(kc, ns, 'app')).toContain(secretNameFor(cr));
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret-status', name: cr }, 'status');
    await fx.drain();
    const status = (await readCr(kc, cr)).status;
    expect(status).toMatchObject({ secretsDesired: 1, secretsSuccess: 1 });
    expect(status?.failedNamespaces ?? []).toEqual([]);
    expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Synced',
    });
  });
});

describe('finalizer removed by hand, then the CR deleted (item 5)', () => {
  it('its CR job sweeps what is left: the Secret (no owner reference for a garbage collector) and the entries', async () => {
    const ns = await namespace('orphan');
    const cr = await newCr({ namespaces: ns, docker: docker() });
    await reconcileCr(cr);
    expect(await pullSecretsOf(kc, ns, 'default')).toContain(secretNameFor(cr));
    await custom.patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name: cr,
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await deleteCr(kc, cr);
    // What the relay enqueues for a deleted CR.
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'deleted');
    await fx.drain();
    // Swept by the namespace job the CR job enqueued, in that drain: nothing to wait for.
    expect(await pullSecretsOf(kc, ns, 'default')).not.toContain(secretNameFor(cr));
    expect(await readSecret(kc, ns, secretNameFor(cr))).toBeUndefined();
  });
});

describe('events only on real transitions (item 8)', () => {
  it('emits one Synced event for a generation, not one per Progressing → Synced', async () => {
    const label = { hardening: uniqueName('ev') };
    await namespace('ev', label);
    const cr = await newCr({ namespaces: '*', namespaceSelector: { matchLabels: label }, docker: docker() });
    await reconcileCr(cr);
    expect(await readyOf(cr)).toMatchObject({ reason: 'Synced' });
    for (let i = 0; i < 2; i++) {
      const ns = await namespace('ev', label);
      // The CR's status sees the new namespace before its namespace job has run...
      await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret-status', name: cr }, 'status');
      await fx.drain();
      expect(await readyOf(cr)).toMatchObject({ reason: 'Progressing' });
      // ...then the job converges it.
      await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'added');
      await fx.drain();
      expect(await readyOf(cr)).toMatchObject({ reason: 'Synced' });
    }
    const synced = (await eventsOf(cr)).filter((e) => e.reason === 'Synced');
    expect(synced, JSON.stringify(synced)).toHaveLength(1);
  });
});

describe('smaller items (10)', () => {
  it('finishes quietly when the CR is deleted between its read and its first write', async () => {
    const cr = await newCr({ namespaces: uniqueName('never'), docker: docker() });
    // The real adapter, with the deletion landing right after the CR was read (before the finalizer patch).
    class DeletedRightAfterRead extends KubeCluster {
      override async getImagePullSecret(name: string): Promise<CrView | undefined> {
        const view = await super.getImagePullSecret(name);
        await deleteCr(kc, name).catch(() => {});
        return view;
      }
    }
    const cluster = new DeletedRightAfterRead(
      CLUSTER,
      functionsKc,
      () => {},
      new KubeSystemObjects(functionsKc, SYSTEM_NAMESPACE),
    );
    const deps = {
      ...fx.rt.runDeps,
      depsFor: async (id: string, job: Parameters<typeof fx.rt.runDeps.depsFor>[1]) => ({
        ...(await fx.rt.runDeps.depsFor(id, job)),
        cluster,
      }),
    };
    const result = await runJob(
      deps,
      {
        v: 1,
        key: { cluster: CLUSTER, kind: 'imagepullsecret', name: cr },
        trigger: 'added',
        at: Date.now(),
      },
      { attempt: 1, maxAttempts: 1 },
    );
    expect(result.skipped).toBe('imagepullsecret-not-found');
    const entries = await listAudit(fx.rt.redis, `${fx.prefix}:audit`, { cr });
    expect(entries.at(-1)?.outcome).toBe('success');
  });

  it('refreshes private endpoints on the CR event, not at the next periodic tick', async () => {
    const cr = await newCr({
      namespaces: uniqueName('pn'),
      docker: { server: `${REGISTRY}.tencentcloudcr.com` },
      tcr: { registryId: REGISTRY, region: REGION },
      privateNetwork: { enabled: true },
    });
    await reconcileCr(cr);
    const hosts = await waitFor(
      'the private endpoint in the hosts-updater map',
      async () => {
        const cm = await core
          .readNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
          .catch(() => undefined);
        const list = JSON.parse(cm?.data?.hosts ?? '[]') as { domain: string; ip: string }[];
        return list.length > 0 ? list : undefined;
      },
      // The harness schedules no periodic refresh (PRIVATE_ENDPOINTS_EVERY_MS 0): only the CR's event can
      // fill the map, however long it takes, so the wait can be generous for a loaded machine.
      { timeoutMs: 60_000 },
    );
    expect(hosts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ domain: `${REGISTRY}.tencentcloudcr.com`, ip: '10.30.0.5' }),
      ]),
    );
  });

  it('names metadata.name as the field of the CR name length rule', async () => {
    const error = await rejectionOf(
      custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'ImagePullSecret',
          metadata: { name: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}` },
          spec: { docker: docker() },
        },
        dryRun: 'All',
      }),
    );
    expect(statusOf(error)).toBe(422);
    const body = JSON.parse(String((error as { body: unknown }).body)) as {
      message: string;
      details?: { causes?: { field?: string; message?: string }[] };
    };
    expect(body.message).not.toContain('<nil>');
    expect(body.details?.causes?.map((c) => c.field)).toContain('metadata.name');
  });
});
