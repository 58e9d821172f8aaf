import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeHelloImage, writeImageArchive } from '../../infra/local/images.js';
import { NODE_NAME, SHIELDED_SYSCTLS } from '../../infra/local/node.js';
import { pushImage } from '../../infra/local/registry.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import {
  apiServerEnv,
  createPod,
  podEvents,
  podLog,
  requireNode,
  runNode,
  waitForPodState,
} from '../support/node.js';
import { startTcrInstance, type TcrInstance } from '../support/registry.js';
import { waitFor } from '../support/wait.js';

// The run's real node (kubelet + containerd, test/e2e/global-setup.ts): pods are scheduled onto it and run,
// images come from an archive or from the local TLS registry whose token service is the Tencent emulator
// (containerd's own OAuth2 POST), nothing it runs talks to anything but loopback, and the machine's sysctls,
// mounts and files are untouched.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const NS = uniqueName('node');
const REGION = 'ap-guangzhou';
const REGISTRY = 'tcr-node0001';
const SECRET_ID = 'AKIDNODEE2E0000000000000000000000';
const SECRET_KEY = 'node-e2e-secret-key';
const node = runNode();
let dir: string;
let tcr: TcrInstance | undefined;

beforeAll(async () => {
  if (!node) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-node-e2e-'));
  await createNamespace(kc, NS);
});

afterAll(async () => {
  await core.deleteNamespace({ name: NS }).catch(() => {});
  await tcr?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a real node', () => {
  it('is Ready as 127.0.0.1 with the identity system:node:127.0.0.1', async (ctx) => {
    requireNode(ctx);
    const n = await core.readNode({ name: NODE_NAME });
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(n.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    expect(n.spec?.taints ?? []).toEqual([]);
    // The kubelet wrote its own Node: NodeRestriction lets only system:node:127.0.0.1 do that.
    expect(n.metadata?.managedFields?.some((f) => f.manager === 'kubelet')).toBe(true);
  });

  it('schedules a pod, runs an imported image and serves its log through the API server', async (ctx) => {
    const n = requireNode(ctx);
    const image = await writeHelloImage(path.join(dir, 'imported'), `tcr.local/hello:${NS}`);
    await n.importImage(await writeImageArchive(image, path.join(dir, 'imported.tar')));
    await createPod(kc, NS, {
      name: 'hello',
      image: image.ref,
      pullPolicy: 'IfNotPresent',
      args: ['hello from the node'],
    });
    const pod = await waitForPodState(kc, NS, 'hello', ['Succeeded'], 60_000);
    expect(pod.spec?.nodeName).toBe(NODE_NAME);
    expect(pod.status?.containerStatuses?.[0]?.image).toBe(image.ref);
    expect(await podLog(kc, NS, 'hello')).toBe('hello from the node\n');
    // Its projected ServiceAccount token needed the root CA ConfigMap (root-ca-certificate-publisher).
    expect(pod.spec?.volumes?.some((v) => v.projected)).toBe(true);
    // The Service ClusterIP range is loopback: even the `kubernetes` Service never points off the machine.
    expect(
      (await core.readNamespacedService({ namespace: 'default', name: 'kubernetes' })).spec?.clusterIP,
    ).toMatch(/^127\./);
  });

  it("runs a Deployment's replicas (controller-manager + scheduler)", async (ctx) => {
    requireNode(ctx);
    const ref = `tcr.local/hello:${NS}`;
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'sleepers' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'sleepers' } },
          template: {
            metadata: { labels: { app: 'sleepers' } },
            spec: {
              hostNetwork: true,
              terminationGracePeriodSeconds: 1,
              containers: [
                { name: 'main', image: ref, imagePullPolicy: 'IfNotPresent', args: ['-sleep', 'up'] },
              ],
            },
          },
        },
      },
    });
    const ready = await waitFor(
      'the Deployment to have 2 available replicas',
      async () => {
        const d = await apps.readNamespacedDeployment({ namespace: NS, name: 'sleepers' });
        return d.status?.availableReplicas === 2 ? d : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(ready.status?.readyReplicas).toBe(2);
    await apps.deleteNamespacedDeployment({ namespace: NS, name: 'sleepers' });
  });

  it('pulls from the TLS registry through the emulator token service (containerd POSTs the OAuth2 form)', async (ctx) => {
    const n = requireNode(ctx);
    tcr = await startTcrInstance(dir, {
      registryId: REGISTRY,
      region: REGION,
      secretId: SECRET_ID,
      secretKey: SECRET_KEY,
      service: 'tcr-node-registry',
    });
    const { emulator, registry } = tcr;
    await n.trustRegistry(registry.host, registry.caFile ?? '');
    const pusher = await tcr.issueToken();
    const image = await writeHelloImage(path.join(dir, 'pushed'), `${registry.host}/node/hello:v1`);
    const ref = await pushImage(image, registry, 'node/hello:v1', pusher);
    const puller = await tcr.issueToken();
    const dockerconfig = (password: string) =>
      JSON.stringify({ auths: { [registry.host]: { username: puller.username, password } } });
    for (const [name, password] of [
      ['good', puller.token],
      ['bad', 'not-a-token'],
    ] as const) {
      await core.createNamespacedSecret({
        namespace: NS,
        body: {
          metadata: { name: `pull-${name}` },
          type: 'kubernetes.io/dockerconfigjson',
          stringData: { '.dockerconfigjson': dockerconfig(password) },
        },
      });
      await core.createNamespacedPod({
        namespace: NS,
        body: {
          metadata: { name: `pull-${name}` },
          spec: {
            hostNetwork: true,
            restartPolicy: 'Never',
            imagePullSecrets: [{ name: `pull-${name}` }],
            containers: [
              {
                name: 'main',
                image: ref,
                imagePullPolicy: 'Always',
                args: [`pulled with the ${name} credential`],
                env: apiServerEnv(),
              },
            ],
          },
        },
      });
    }
    const pulled = await waitForPodState(kc, NS, 'pull-good', ['Succeeded'], 60_000);
    expect(pulled.status?.containerStatuses?.[0]?.imageID).toBe(
      `${registry.host}/node/hello@${image.digest}`,
    );
    expect(await podLog(kc, NS, 'pull-good')).toBe('pulled with the good credential\n');
    expect(emulator.registryTokenRequests('POST')).toBeGreaterThanOrEqual(1);
    await waitForPodState(kc, NS, 'pull-bad', ['ErrImagePull', 'ImagePullBackOff'], 60_000);
    const events = await waitFor('the pull failure event', async () => {
      const list = await podEvents(kc, NS, 'pull-bad');
      return list.some((e) => e.includes('401')) ? list : undefined;
    });
    expect(events.join('\n')).toMatch(/401 Unauthorized/);
  });

  it('keeps every socket of every node process on loopback, and sees them all', async (ctx) => {
    const n = requireNode(ctx);
    const api = new URL(inject('apiServer'));
    await createPod(kc, NS, {
      name: 'holder',
      image: `tcr.local/hello:${NS}`,
      pullPolicy: 'IfNotPresent',
      args: ['-connect', `${api.hostname}:${api.port}`],
    });
    await waitForPodState(kc, NS, 'holder', ['Running']);
    const scan = await waitFor('the pod connection in the scan', async () => {
      const s = await n.scanNetwork();
      return s.sockets.some((x) => x.command === 'hello' && x.remote === `127.0.0.1:${api.port}`)
        ? s
        : undefined;
    });
    // containerd, the kubelet (its API server connection), the pod: all seen, all on loopback.
    expect(new Set(scan.sockets.map((s) => s.command))).toEqual(new Set(['containerd', 'kubelet', 'hello']));
    expect(scan.violations).toEqual([]);
    expect(await n.recordedViolations()).toEqual([]);
    await core.deleteNamespacedPod({ namespace: NS, name: 'holder' });
  });

  it('leaves the machine alone: sysctls, mounts, /etc files and /var/log are private to the node', async (ctx) => {
    const n = requireNode(ctx);
    const before = inject('hostSysctls');
    for (const key of SHIELDED_SYSCTLS) {
      expect(readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim(), key).toBe(before[key]);
    }
    // ... while the kubelet did write its values, into the node's private copies.
    expect(readFileSync(path.join(n.info.dir, 'sysctl', 'vm.overcommit_memory'), 'utf8').trim()).toBe('1');
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain('tcr-');
    expect(readFileSync(path.join(n.info.dir, 'etc', 'resolv.conf'), 'utf8')).toMatch(
      /^nameserver 127\.0\.0\.1$/m,
    );
    // Pod logs and /var/log/containers links live in the node's private /var/log.
    const links = existsSync('/var/log/containers') ? readdirSync('/var/log/containers') : [];
    expect(links.filter((l) => l.includes(NS))).toEqual([]);
    expect(readdirSync(path.join(n.info.dir, 'var-log', 'containers')).some((l) => l.includes(NS))).toBe(
      true,
    );
  });
});
