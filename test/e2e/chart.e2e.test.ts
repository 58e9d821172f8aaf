import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeHelloImage } from '../../infra/local/images.js';
import { SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { type LocalRegistry, pushImage } from '../../infra/local/registry.js';
import { FIELD_MANAGER } from '../../shared/contracts/labels.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/contracts/names.js';
import { CHART_DIR, helm, setArgs } from '../support/chart.js';
import { createCr, deleteCr, patchCrSpec, readCr } from '../support/crs.js';
import { projectImage, unpackImage } from '../support/image.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import { podLog, requireNode, runNode, waitForPodState } from '../support/node.js';
import { startTcrInstance, type TcrInstance } from '../support/registry.js';
import { dockerConfigOf, pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// Issue 11's "done when", on the run's real node: the chart installed with helm, with the image built by the
// project's own script and pulled from the local TLS registry; relay and worker pods Ready with their own
// ServiceAccount tokens (in-cluster config, the loopback API server and Redis from values); the seed's
// walkthrough converging with everything running in-cluster (a pod that names no pull Secret pulls from the
// registry); add-on Secret adoption switched on by `helm upgrade`, which rolls the pods; the leading relay
// killed and the standby taking over; `helm uninstall` removing our workloads. Nothing talks off loopback.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const leases = kc.makeApiClient(CoordinationV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const node = runNode();
const RELEASE = 'tcr-e2e';
const FULLNAME = `${RELEASE}-tcr-assistant`;
const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-chart${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDCHART${randomBytes(10).toString('hex').toUpperCase()}`;
const SECRET_KEY = `chartKey${randomBytes(16).toString('hex')}`;
const suffix = randomBytes(3).toString('hex');
const CR = `sample-${suffix}`;
const ADOPT_CR = `adopt-${suffix}`;
const NS_BEFORE = uniqueName('chart-before');
const NS_ADOPT = uniqueName('chart-adopt');
const NS_NEW = uniqueName('chart-new');
const NS_AFTER_KILL = uniqueName('chart-kill');
const PULL_SECRET = 'tcr-e2e-image-pull';
const api = new URL(inject('apiServer'));

let dir: string;
let tcr: TcrInstance | undefined;
let registry: LocalRegistry | undefined;
let helloRef: string;
let values: Record<string, string | number | boolean>;
let installed = false;
const timings: Record<string, number> = {};

const issueToken = () => {
  if (!tcr) throw new Error('no TCR instance');
  return tcr.issueToken();
};

/** A base port whose next one is free too (hostNetwork: replica i listens on base + i). */
async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<net.Server | undefined>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const a = await listen(base);
    const b = a && (await listen(base + 1));
    a?.close();
    b?.close();
    if (a && b) return base;
  }
  throw new Error('no free pair of loopback ports');
}

const kubeconfigArgs = () => ['--kubeconfig', inject('kubeconfigPath')];

async function helmOk(args: string[]): Promise<string> {
  const result = await helm([...args, ...kubeconfigArgs()]);
  if (result.code !== 0) throw new Error(`helm ${args[0]} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

async function releasePods(component: string): Promise<V1Pod[]> {
  const list = await core.listNamespacedPod({
    namespace: SYSTEM_NAMESPACE,
    labelSelector: `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}`,
  });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

async function waitForReadyPods(
  component: string,
  count: number,
  exclude: string[] = [],
  timeoutMs = 180_000,
) {
  return waitFor(
    `${count} Ready ${component} pod(s)`,
    async () => {
      const pods = (await releasePods(component)).filter((p) => !exclude.includes(p.metadata?.name ?? ''));
      return pods.length === count && pods.every(isReady) ? pods : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await leases
    .readNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: `${FULLNAME}-relay` })
    .catch(() => undefined);
  return lease?.spec?.holderIdentity ?? undefined;
}

async function converged(cr: string, minDesired = 1) {
  return waitFor(
    `ImagePullSecret ${cr} to converge`,
    async () => {
      const obj = await readCr(kc, cr);
      const s = obj.status;
      return s &&
        (s.secretsDesired ?? 0) >= minDesired &&
        s.secretsSuccess === s.secretsDesired &&
        s.observedGeneration === obj.metadata.generation
        ? obj
        : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
}

beforeAll(async () => {
  if (!node) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-chart-e2e-'));
  tcr = await startTcrInstance(dir, {
    registryId: REGISTRY,
    region: REGION,
    secretId: SECRET_ID,
    secretKey: SECRET_KEY,
    service: 'tcr-chart-registry',
  });
  registry = tcr.registry;
  await node.trustRegistry(registry.host, registry.caFile ?? '');

  // Our image, built by the project's script, pushed to the registry; the workload image a user deploys.
  const started = Date.now();
  const built = await projectImage();
  timings.imageBuildSeconds = (Date.now() - started) / 1000;
  const unpacked = path.join(dir, 'image');
  await unpackImage(built.tarball, unpacked);
  const pusher = await issueToken();
  const tag = built.name.split(':')[1] as string;
  await pushImage(
    {
      ref: `${registry.host}/tcr/tcr-assistant:${tag}`,
      tag,
      digest: built.manifestDigest,
      layoutDir: path.join(unpacked, 'oci'),
    },
    registry,
    `tcr/tcr-assistant:${tag}`,
    pusher,
  );
  const hello = await writeHelloImage(path.join(dir, 'hello'), `${registry.host}/demo/hello:${suffix}`);
  helloRef = await pushImage(hello, registry, `demo/hello:${suffix}`, pusher);

  // The chart's own pods pull our image with a pull Secret of their own (the workloads it serves need none).
  const puller = await issueToken();
  await core.createNamespacedSecret({
    namespace: SYSTEM_NAMESPACE,
    body: {
      metadata: { name: PULL_SECRET },
      type: 'kubernetes.io/dockerconfigjson',
      stringData: {
        '.dockerconfigjson': JSON.stringify({
          auths: { [registry.host]: { username: puller.username, password: puller.token } },
        }),
      },
    },
  });

  values = {
    clusterId: `chart-${suffix}`,
    'redis.url': inject('redisUrl'),
    'redis.queuePrefix': `{chart${suffix}}`,
    'image.repository': `${registry.host}/tcr/tcr-assistant`,
    'image.tag': tag,
    hostNetwork: true,
    'kubernetesApi.host': api.hostname,
    'kubernetesApi.port': api.port,
    'relay.httpPort': await freePortPair(),
    'worker.metricsPort': await freePortPair(),
    'relay.leaseDurationSeconds': 10,
    'webhook.httpPort': await freePortPair(),
  };
  // The webhook's Service listens on the port replica 0 listens on: the API server dials the Service's
  // (loopback) ClusterIP at that port, which reaches the host-network pod (no kube-proxy here).
  values['webhook.port'] = await freePortPair();
  values['webhook.service.port'] = values['webhook.port'] as number;
}, 600_000);

afterAll(async () => {
  if (installed) await helm(['uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--wait', ...kubeconfigArgs()]);
  // No functions of this release run any more: drop our finalizer ourselves, so that no CR of this file is
  // left for the next files' functions (they reconcile every CR of the cluster).
  for (const cr of [CR, ADOPT_CR]) {
    await deleteCr(kc, cr).catch(() => {});
    await kc
      .makeApiClient(CustomObjectsApi)
      .patchClusterCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL, name: cr, body: { metadata: { finalizers: [] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      .catch(() => {});
  }
  for (const ns of [NS_BEFORE, NS_ADOPT, NS_NEW, NS_AFTER_KILL])
    await core.deleteNamespace({ name: ns }).catch(() => {});
  await core.deleteNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name: PULL_SECRET }).catch(() => {});
  await tcr?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (Object.keys(timings).length > 0) console.log(`[chart e2e] timings ${JSON.stringify(timings)}`);
});

describe('the Helm chart on the real node', () => {
  it('helm install: relay and worker pods Ready from the pushed image, with their own ServiceAccount tokens; the CR made before converges', async (ctx) => {
    requireNode(ctx);
    // Before the install: a CR, a namespace for it, and a Secret shaped like Tencent's TCR add-on's.
    const puller = await issueToken();
    await createNamespace(kc, NS_BEFORE);
    await createNamespace(kc, NS_ADOPT);
    await createCr(kc, CR, {
      namespaces: [NS_BEFORE, NS_NEW, NS_AFTER_KILL].join(','),
      serviceAccounts: '*',
      docker: { server: registry!.host, username: puller.username, password: puller.token },
    });
    await core.createNamespacedSecret({
      namespace: NS_ADOPT,
      body: {
        metadata: { name: secretNameFor(ADOPT_CR) },
        type: 'kubernetes.io/dockerconfigjson',
        stringData: {
          '.dockerconfigjson': JSON.stringify({ auths: { 'old.example.com': { auth: 'eDp5' } } }),
        },
      },
    });
    await createCr(kc, ADOPT_CR, {
      namespaces: NS_ADOPT,
      docker: { server: registry!.host, username: puller.username, password: puller.token },
    });

    const started = Date.now();
    await helmOk([
      'install',
      RELEASE,
      CHART_DIR,
      '-n',
      SYSTEM_NAMESPACE,
      ...setArgs(values),
      '--set-json',
      `imagePullSecrets=[{"name":"${PULL_SECRET}"}]`,
      '--set-json',
      'worker.extraEnv=[{"name":"STATUS_DELAY_MS","value":"500"}]',
    ]);
    installed = true;
    timings.helmInstallSeconds = (Date.now() - started) / 1000;
    const relays = await waitForReadyPods('relay', 2);
    const workers = await waitForReadyPods('worker', 2);
    const webhooks = await waitForReadyPods('webhook', 2);
    timings.installToReadySeconds = (Date.now() - started) / 1000;
    expect(webhooks.map((p) => p.spec?.serviceAccountName)).toEqual([
      `${FULLNAME}-webhook`,
      `${FULLNAME}-webhook`,
    ]);
    await converged(CR);
    timings.installToConvergedSeconds = (Date.now() - started) / 1000;

    for (const pod of [...relays, ...workers]) {
      const spec = pod.spec!;
      expect(spec.nodeName).toBe('127.0.0.1');
      expect(spec.hostNetwork).toBe(true);
      expect(spec.serviceAccountName).toBe(
        pod.metadata?.labels?.['app.kubernetes.io/component'] === 'relay'
          ? `${FULLNAME}-relay`
          : `${FULLNAME}-functions`,
      );
      // Its own token, projected by the kubelet; the API server address from values, on loopback.
      expect(spec.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))).toBe(true);
      const env = spec.containers[0]?.env ?? [];
      expect(env.find((e) => e.name === 'KUBERNETES_SERVICE_HOST')?.value).toMatch(/^127\./);
      expect(pod.status?.containerStatuses?.[0]?.imageID).toContain(
        `${registry!.host}/tcr/tcr-assistant@sha256:`,
      );
    }
    // One relay leads.
    const holder = await waitFor('a relay to hold the Lease', leaseHolder, { timeoutMs: 30_000 });
    expect(relays.map((p) => p.metadata?.name)).toContain(holder);
    // The CR's Secret in the namespace that existed before the install, on its default ServiceAccount.
    await waitFor('the default ServiceAccount entry', async () =>
      (await pullSecretsOf(kc, NS_BEFORE, 'default')).includes(secretNameFor(CR)) ? true : undefined,
    );
  });

  it("the seed's walkthrough converges in-cluster: new namespace, a pod with no pull Secret pulls, ServiceAccount kung, password edit, CR delete", async (ctx) => {
    requireNode(ctx);
    const secretName = secretNameFor(CR);
    await createNamespace(kc, NS_NEW);
    await waitFor('the new namespace to get the Secret on its default ServiceAccount', async () =>
      (await pullSecretsOf(kc, NS_NEW, 'default')).includes(secretName) ? true : undefined,
    );
    // Born with it: the webhook pod (from the image, its own certificate) added it at creation; had our
    // functions patched it in, their field manager would own imagePullSecrets.
    const born = await core.readNamespacedServiceAccount({ namespace: NS_NEW, name: 'default' });
    const writers = (born.metadata?.managedFields ?? [])
      .filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('imagePullSecrets'))
      .map((f) => f.manager);
    expect(writers).not.toContain(FIELD_MANAGER);
    await core.createNamespacedPod({
      namespace: NS_NEW,
      body: {
        metadata: { name: 'app' },
        spec: {
          hostNetwork: true,
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: helloRef,
              imagePullPolicy: 'Always',
              args: ['pulled with no pull Secret in my YAML'],
            },
          ],
        },
      },
    });
    const pod = await waitForPodState(kc, NS_NEW, 'app', ['Succeeded'], 90_000);
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: secretName }]);
    expect(await podLog(kc, NS_NEW, 'app')).toBe('pulled with no pull Secret in my YAML\n');

    await core.createNamespacedServiceAccount({ namespace: NS_NEW, body: { metadata: { name: 'kung' } } });
    await waitFor('ServiceAccount kung to carry the entry', async () =>
      (await pullSecretsOf(kc, NS_NEW, 'kung')).includes(secretName) ? true : undefined,
    );

    const fresh = await issueToken();
    await patchCrSpec(kc, CR, {
      docker: { server: registry!.host, username: fresh.username, password: fresh.token },
    });
    await waitFor('the Secrets to carry the new password', async () => {
      const secret = await readSecret(kc, NS_NEW, secretName);
      const auth = secret && dockerConfigOf(secret).auths[registry!.host];
      return auth?.password === fresh.token ? true : undefined;
    });
    await converged(CR, 2);
  });

  it('adoption: the add-on-shaped Secret is a Conflict with adoption off; `helm upgrade --set adoption.addonSecrets=true` rolls the pods and takes it over', {
    timeout: 300_000,
  }, async (ctx) => {
    requireNode(ctx);
    const name = secretNameFor(ADOPT_CR);
    const conflict = await waitFor('the CR to report the Conflict', async () => {
      const cr = await readCr(kc, ADOPT_CR);
      return cr.status?.failedNamespaces?.find((f) => f.namespace === NS_ADOPT && f.reason === 'Conflict');
    });
    expect(conflict.message).toContain('not created by tcr-assistant');
    expect(
      (await readSecret(kc, NS_ADOPT, name))?.metadata?.labels?.['app.kubernetes.io/managed-by'],
    ).toBeUndefined();

    const before = [...(await releasePods('relay')), ...(await releasePods('worker'))].map(
      (p) => p.metadata?.name ?? '',
    );
    const started = Date.now();
    await helmOk([
      'upgrade',
      RELEASE,
      CHART_DIR,
      '-n',
      SYSTEM_NAMESPACE,
      '--reuse-values',
      '--set',
      'adoption.addonSecrets=true',
      // A value of every pod: the relays roll too.
      '--set',
      'logLevel=warn',
    ]);
    const workers = await waitForReadyPods('worker', 2, before);
    const relays = await waitForReadyPods('relay', 2, before);
    timings.upgradeRollSeconds = (Date.now() - started) / 1000;
    for (const p of [...workers, ...relays]) expect(before).not.toContain(p.metadata?.name);
    expect(workers[0]?.spec?.containers[0]?.env?.find((e) => e.name === 'ADOPT_ADDON_SECRETS')?.value).toBe(
      'true',
    );

    const adopted = await waitFor(
      'the add-on Secret to be ours',
      async () => {
        const secret = await readSecret(kc, NS_ADOPT, name);
        return secret?.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'tcr-assistant'
          ? secret
          : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(Object.keys(dockerConfigOf(adopted).auths)).toEqual([registry!.host]);
    await converged(ADOPT_CR);
  });

  it('killing the leading relay pod hands the Lease to another relay replica, which keeps relaying', async (ctx) => {
    requireNode(ctx);
    const leader = await waitFor('a relay to hold the Lease', leaseHolder, { timeoutMs: 30_000 });
    const standby = (await releasePods('relay')).map((p) => p.metadata?.name).filter((n) => n !== leader);
    expect(standby).toHaveLength(1);
    const started = Date.now();
    await core.deleteNamespacedPod({ namespace: SYSTEM_NAMESPACE, name: leader, gracePeriodSeconds: 0 });
    const next = await waitFor(
      'another relay to take the Lease',
      async () => {
        const h = await leaseHolder();
        return h && h !== leader ? h : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    timings.handoverSeconds = (Date.now() - started) / 1000;
    // The standby, or the killed pod's replacement if it started and asked first (both are relay replicas
    // of this release; the killed pod released the Lease on its way out).
    const relays = (await releasePods('relay')).map((p) => p.metadata?.name);
    expect(relays).toContain(next);
    timings.handoverToStandby = next === standby[0] ? 1 : 0;
    await createNamespace(kc, NS_AFTER_KILL);
    await waitFor('the namespace created after the handover to get the entry', async () =>
      (await pullSecretsOf(kc, NS_AFTER_KILL, 'default')).includes(secretNameFor(CR)) ? true : undefined,
    );
  });

  it('CR delete removes what it made; helm uninstall removes our workloads and RBAC, keeps the CRD; nothing ever left loopback', async (ctx) => {
    const n = requireNode(ctx);
    await deleteCr(kc, CR);
    await waitFor(
      'the CR to be gone (finalizer done)',
      async () => ((await readCr(kc, CR).catch(() => undefined)) ? undefined : true),
      {
        timeoutMs: 60_000,
      },
    );
    for (const ns of [NS_BEFORE, NS_NEW]) {
      expect(await readSecret(kc, ns, secretNameFor(CR))).toBeUndefined();
      expect(await pullSecretsOf(kc, ns, 'default')).not.toContain(secretNameFor(CR));
    }

    await helmOk(['uninstall', RELEASE, '-n', SYSTEM_NAMESPACE, '--wait']);
    installed = false;
    const deployments = await apps.listNamespacedDeployment({
      namespace: SYSTEM_NAMESPACE,
      labelSelector: `app.kubernetes.io/instance=${RELEASE}`,
    });
    expect(deployments.items).toEqual([]);
    await waitFor('the release pods to be gone', async () =>
      (await releasePods('relay')).length +
        (await releasePods('worker')).length +
        (await releasePods('webhook')).length ===
      0
        ? true
        : undefined,
    );
    const roles = await rbac.listClusterRole({ labelSelector: `app.kubernetes.io/instance=${RELEASE}` });
    expect(roles.items).toEqual([]);
    // The CRD (crds/ is never deleted by helm) and the other CR with its adopted Secret stay.
    expect((await readCr(kc, ADOPT_CR)).metadata.name).toBe(ADOPT_CR);
    expect(await readSecret(kc, NS_ADOPT, secretNameFor(ADOPT_CR))).toBeDefined();
    expect(await n.recordedViolations()).toEqual([]);
    await writeFile(path.join(dir, 'timings.json'), JSON.stringify(timings));
  });
});
