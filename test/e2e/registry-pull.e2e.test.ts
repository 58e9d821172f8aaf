import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltImage, writeHelloImage } from '../../infra/local/images.js';
import { SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { type LocalRegistry, pushImage } from '../../infra/local/registry.js';
import type { TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/contracts/jobs.js';
import { createCr, deleteCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, createNamespace, statusOf, uniqueName } from '../support/kube.js';
import {
  createPod,
  podEvents,
  podLog,
  podState,
  requireNode,
  runNode,
  waitForPodState,
} from '../support/node.js';
import { startTcrInstance, type TcrInstance } from '../support/registry.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// The credential the functions distribute really pulls. A docker-registry (distribution 2.8, TLS with the
// run's CA) with bearer-token auth whose token service is the Tencent emulator (as TCR's registry accepts
// instance tokens); skopeo reads the manifest with the .dockerconfigjson read back from the cluster; and the
// run's real node (kubelet + containerd) pulls for pods whose YAML names no pull Secret, through the relay and
// the functions, with `imagePullPolicy: Always` (a cached image would run without any credential).

const run = promisify(execFile);
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-pull${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDPULL${randomBytes(10).toString('hex').toUpperCase()}`;
const SECRET_KEY = `pullKey${randomBytes(16).toString('hex')}`;
const KEY_SECRET = uniqueName('pull-api-key');
const CR = uniqueName('pull');
const PULL_SECRET = `tcr.ips${CR}`;
/** Namespaces with this label are under the CR; the excluded one lacks it. */
const SCOPE = { 'tcr-pull-e2e': randomBytes(4).toString('hex') };
const NS = uniqueName('pull-ns');
const IMAGE = 'demo/app:v1';
const RACE_TRIES = Number(process.env.TCR_RACE_TRIES ?? 50);

let tcr: TcrInstance | undefined;
let emulator: TencentEmulator;
let registry: LocalRegistry;
let fx: FunctionsHarness;
let relay: RelayProcess | undefined;
let dir: string;
let image: BuiltImage;
let imageRef: string;
const namespaces: string[] = [];
const savedEnv = { ...process.env };

/** skopeo with the pull Secret's .dockerconfigjson as its auth file; resolves to the raw manifest. */
async function inspectWith(dockerConfigJson: string): Promise<string> {
  const authfile = path.join(dir, `auth-${randomBytes(4).toString('hex')}.json`);
  await writeFile(authfile, dockerConfigJson);
  const { stdout } = await run('skopeo', [
    'inspect',
    '--raw',
    `--cert-dir=${registry.certDir}`,
    '--authfile',
    authfile,
    `docker://${registry.host}/${IMAGE}`,
  ]);
  return stdout;
}

async function pullSecretConfig(namespace = NS): Promise<string | undefined> {
  const secret = await readSecret(kc, namespace, PULL_SECRET);
  const raw = secret?.data?.['.dockerconfigjson'];
  return raw ? Buffer.from(raw, 'base64').toString('utf8') : undefined;
}

async function newNamespace(name: string, inScope: boolean): Promise<void> {
  namespaces.push(name);
  await createNamespace(kc, name, inScope ? SCOPE : {});
}

async function waitForEntry(namespace: string): Promise<void> {
  await waitFor(
    `${namespace}/default to carry ${PULL_SECRET}`,
    async () => (await pullSecretsOf(kc, namespace, 'default')).includes(PULL_SECRET),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-pull-e2e-'));
  tcr = await startTcrInstance(dir, {
    registryId: REGISTRY,
    region: REGION,
    secretId: SECRET_ID,
    secretKey: SECRET_KEY,
    service: 'tcr-e2e-registry',
  });
  ({ emulator, registry } = tcr);
  await runNode()?.trustRegistry(registry.host, registry.caFile ?? '');
  // The image, pushed with an instance token of its own (as a CI system would).
  const pusher = await tcr.issueToken();
  image = await writeHelloImage(path.join(dir, 'image'), `${registry.host}/${IMAGE}`, `${REGISTRY}`);
  imageRef = await pushImage(image, registry, IMAGE, pusher);

  Object.assign(process.env, { TENCENTCLOUD_ENDPOINT: emulator.endpoint, TENCENTCLOUD_PROTOCOL: 'http://' });
  fx = await startFunctions({ TOKEN_REVOKE_GRACE_SECONDS: '1', STATUS_DELAY_MS: '500' });
  await core.createNamespacedSecret({
    namespace: SYSTEM_NAMESPACE,
    body: { metadata: { name: KEY_SECRET }, stringData: { SecretId: SECRET_ID, SecretKey: SECRET_KEY } },
  });
  await newNamespace(NS, true);
  if (runNode()) {
    // The whole pipeline for the node's tests: namespaces and ServiceAccounts appear, the relay sees them.
    relay = await startRelayProcess({
      KUBECONFIG: inject('relayKubeconfigPath'),
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: fx.prefix,
      CLUSTER_ID: CLUSTER,
      // The one Lease the relay's Role allows; short, so that a relay another file killed hands over fast.
      LEASE_NAME: 'tcr-assistant-relay',
      LEASE_DURATION_MS: '3000',
      LEASE_RETRY_MS: '300',
      LOG_LEVEL: 'warn',
    });
    await relay.waitReady();
  }
  // Above the relay's own 120 s readiness wait, so that a slow start fails with its message and output.
}, 300_000);

afterAll(async () => {
  await relay?.kill();
  if (fx) {
    await deleteCr(kc, CR).catch(() => {});
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR });
    await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
    await fx.drain(30_000).catch(() => {});
    await fx.close();
  }
  for (const name of namespaces) await core.deleteNamespace({ name }).catch(() => {});
  await core.deleteNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name: KEY_SECRET }).catch(() => {});
  await tcr?.stop();
  process.env = savedEnv;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pull with the distributed credential', () => {
  let first: string;
  let current: string;

  it('fetches the manifest from the registry with the Secret read back from the cluster', async () => {
    await createCr(kc, CR, {
      namespaces: '*',
      namespaceSelector: { matchLabels: SCOPE },
      docker: { server: registry.host },
      tcr: {
        registryId: REGISTRY,
        region: REGION,
        tokenType: 'longterm',
        credentialsSecretRef: { namespace: SYSTEM_NAMESPACE, name: KEY_SECRET },
      },
    });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR }, 'added');
    first = await waitFor('the pull Secret', () => pullSecretConfig(), { timeoutMs: 30_000 });
    expect(Object.keys(JSON.parse(first).auths)).toEqual([registry.host]);
    const manifest = await inspectWith(first);
    expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(image.digest);
    expect(JSON.parse(manifest).layers).toHaveLength(1);
    expect(emulator.registryTokenRequests('GET')).toBeGreaterThanOrEqual(2);
  });

  it('a pod with no imagePullSecrets, in a namespace created under the CR, pulls (Always) and runs', async (ctx) => {
    requireNode(ctx);
    const ns = uniqueName('pull-new');
    await newNamespace(ns, true);
    await waitForEntry(ns);
    const posts = emulator.registryTokenRequests('POST');
    const created = await createPod(kc, ns, { name: 'app', image: imageRef, args: [`hello from ${ns}`] });
    // The YAML named none; admission copied the ServiceAccount's entry.
    expect(created.spec?.imagePullSecrets).toEqual([{ name: PULL_SECRET }]);
    const pod = await waitForPodState(kc, ns, 'app', ['Succeeded'], 60_000);
    expect(await podLog(kc, ns, 'app')).toBe(`hello from ${ns}\n`);
    expect(pod.status?.containerStatuses?.[0]?.imageID).toBe(`${registry.host}/demo/app@${image.digest}`);
    // containerd asked the token service itself, with the OAuth2 POST.
    expect(emulator.registryTokenRequests('POST')).toBeGreaterThan(posts);
    // A pod of this generation keeps running across the rotation below; its container restarts later.
    await createPod(kc, NS, {
      name: 'old-generation',
      image: imageRef,
      args: ['-sleep'],
      restartPolicy: 'Always',
    });
    await waitForPodState(kc, NS, 'old-generation', ['Running'], 60_000);
  });

  it('a namespace the CR excludes gets ErrImagePull with 401 from the registry', async (ctx) => {
    requireNode(ctx);
    const ns = uniqueName('pull-excluded');
    await newNamespace(ns, false);
    await waitFor('the default ServiceAccount', () => pullSecretsOf(kc, ns, 'default').then(() => true));
    const created = await createPod(kc, ns, { name: 'app', image: imageRef });
    expect(created.spec?.imagePullSecrets).toBeUndefined();
    await waitForPodState(kc, ns, 'app', ['ErrImagePull', 'ImagePullBackOff'], 60_000);
    const events = await waitFor('a Failed event naming 401', async () => {
      const list = await podEvents(kc, ns, 'app');
      return list.some((e) => e.startsWith('Failed') && e.includes('401')) ? list : undefined;
    });
    expect(events.join('\n')).toMatch(/401 Unauthorized/);
    expect(await readSecret(kc, ns, PULL_SECRET)).toBeUndefined();
  });

  it('fails with the revoked token after a rotation, and works with the new one', async () => {
    await fx.rt.tokenReports.requestRotation([REGISTRY]);
    await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
    const second = await waitFor('the rotated Secret', async () => {
      const now = await pullSecretConfig();
      return now && now !== first ? now : undefined;
    });
    const oldAuth = JSON.parse(first).auths[registry.host] as { username: string; password: string };
    // The grace period (1 s here) passes; the next refreshes revoke the replaced long-term token.
    await waitFor(
      'the old token to be revoked',
      async () => {
        await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
        return !emulator.isTokenValid(oldAuth.username, oldAuth.password, REGISTRY);
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    const refused = await inspectWith(first).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? String(error),
    );
    expect(refused).toMatch(/unauthorized|authentication required|401/i);
    const manifest = await inspectWith(second);
    expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(image.digest);
    current = second;
  });

  it('after the rotation a new pod pulls, and a restarted pod of the old generation pulls too', async (ctx) => {
    const node = requireNode(ctx);
    const created = await createPod(kc, NS, { name: 'new-generation', image: imageRef, args: ['rotated'] });
    expect(created.spec?.imagePullSecrets).toEqual([{ name: PULL_SECRET }]);
    await waitForPodState(kc, NS, 'new-generation', ['Succeeded'], 60_000);

    // The old pod names the same Secret, updated in place: kill its container, the kubelet restarts it and,
    // with `Always`, pulls again with what the Secret holds now (the token it started with is revoked).
    const old = await core.readNamespacedPod({ namespace: NS, name: 'old-generation' });
    expect(old.spec?.imagePullSecrets).toEqual([{ name: PULL_SECRET }]);
    const containerId = old.status?.containerStatuses?.[0]?.containerID?.replace('containerd://', '') ?? '';
    const tokensBefore = emulator.registryTokenRequests('POST');
    await node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', containerId]);
    const restarted = await waitFor(
      'the old pod restarted and Running',
      async () => {
        const pod = await core.readNamespacedPod({ namespace: NS, name: 'old-generation' });
        const status = pod.status?.containerStatuses?.[0];
        if ((status?.restartCount ?? 0) < 1 || podState(pod) !== 'Running') throw new Error(podState(pod));
        return pod;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // With `Always` the kubelet starts the container only after a successful pull, and containerd got the
    // token for it from the token service (which refuses the revoked one). (Not the pod's Events: the
    // kubelet's identical "Pulled" events may be folded into one with a count.)
    expect(restarted.status?.containerStatuses?.[0]?.restartCount).toBeGreaterThanOrEqual(1);
    expect(emulator.registryTokenRequests('POST')).toBeGreaterThan(tokensBefore);
    await core.deleteNamespacedPod({ namespace: NS, name: 'old-generation', gracePeriodSeconds: 0 });
  });

  it(`race, measured: ${RACE_TRIES} pods created as soon as their namespace's default ServiceAccount exists`, async (ctx) => {
    requireNode(ctx);
    // Not a fix (the race is its own issue): how often admission runs before our entry is on the
    // ServiceAccount. Such a pod never recovers (its imagePullSecrets are immutable); the others must run.
    const tries: { ns: string; admittedWith: boolean; createdAt: number }[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: RACE_TRIES }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 150));
        const ns = uniqueName(`race-${i}`);
        await newNamespace(ns, true);
        await waitFor(
          `${ns}/default`,
          () =>
            core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }).then(
              () => true,
              (e) => (statusOf(e) === 404 ? false : Promise.reject(e)),
            ),
          { timeoutMs: 30_000, intervalMs: 20 },
        );
        const pod = await createPod(kc, ns, { name: 'app', image: imageRef, args: ['raced'] });
        tries.push({
          ns,
          admittedWith: (pod.spec?.imagePullSecrets ?? []).length > 0,
          createdAt: Date.now(),
        });
      }),
    );
    const last = Math.max(...tries.map((t) => t.createdAt));
    await new Promise((r) => setTimeout(r, Math.max(0, last + 30_000 - Date.now())));
    const results = await Promise.all(
      tries.map(async (t) => ({
        ...t,
        pod: (await core.readNamespacedPod({ namespace: t.ns, name: 'app' })) as V1Pod,
      })),
    );
    const states = results.map((r) => podState(r.pod));
    const stuck = results.filter((r) => ['ErrImagePull', 'ImagePullBackOff'].includes(podState(r.pod)));
    const admittedWithout = results.filter((r) => !r.admittedWith);
    const summary = `[race] ${RACE_TRIES} tries in ${Math.round((Date.now() - started) / 1000)} s: ${stuck.length} stuck in ImagePullBackOff/ErrImagePull 30 s after creation; ${admittedWithout.length} admitted without the pull Secret; states ${JSON.stringify(countBy(states))}`;
    console.log(summary);
    // Every pod admission gave no Secret is stuck 30 s after its creation...
    expect(
      admittedWithout.filter((r) => !stuck.includes(r)).map((r) => `${r.ns}: ${podState(r.pod)}`),
    ).toEqual([]);
    // ...and every pod that got one pulls and runs. Followed until it does, not judged at 30 s: one whose
    // first pull ran before the kubelet's Secret cache had synced ("failed to sync secret cache", seen in CI)
    // is retried after 10 s, then after 20 s more of back-off, and may still be waiting at 30 s.
    const admittedWith = results.filter((r) => r.admittedWith);
    await waitFor(
      `the ${admittedWith.length} pods admitted with the pull Secret to succeed`,
      async () => {
        const pods = await Promise.all(
          admittedWith.map((r) => core.readNamespacedPod({ namespace: r.ns, name: 'app' })),
        );
        const notYet = pods.filter((p) => podState(p) !== 'Succeeded');
        if (notYet.length > 0)
          throw new Error(
            `not Succeeded: ${notYet.map((p) => `${p.metadata?.namespace} ${podState(p)}`).join(', ')}`,
          );
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  }, 300_000);

  it('deleting the CR revokes the token it used and removes the token Secret', async () => {
    const auth = JSON.parse(current).auths[registry.host] as { username: string; password: string };
    expect(emulator.isTokenValid(auth.username, auth.password, REGISTRY)).toBe(true);
    await deleteCr(kc, CR);
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR }, 'deleted');
    await waitFor(
      'the token to be revoked',
      () => !emulator.isTokenValid(auth.username, auth.password, REGISTRY),
      {
        timeoutMs: 30_000,
      },
    );
    expect(emulator.listTokens(REGISTRY).filter((t) => t.type === 'longterm')).toEqual([]);
    const stores = await core.listNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      labelSelector: 'tcr.tencentcloudcr.com/registry-token',
    });
    expect(stores.items.map((s) => s.metadata?.name)).not.toContain(`tcr-token.${REGISTRY}.longterm`);
    expect(await pullSecretConfig()).toBeUndefined();
    const refused = await inspectWith(current).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? String(error),
    );
    expect(refused).toMatch(/unauthorized|authentication required|401/i);
  });
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
