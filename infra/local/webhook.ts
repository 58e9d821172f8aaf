import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  loadYaml,
  type V1MutatingWebhookConfiguration,
  type V1Service,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { ensureTools } from '../image/build-image.js';
import { findFreePort } from './free-port.js';
import { REPO_ROOT, SYSTEM_NAMESPACE } from './paths.js';

const run = promisify(execFile);

import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

// The admission webhook on a local control plane, installed from what ships: its RBAC from infra/rbac (the
// chart grants the same, a test checks it), its Secret, Service and MutatingWebhookConfiguration rendered from
// the Helm chart, except for the Service port. There is no kube-proxy here, so the webhook process listens on
// the Service's own (loopback) ClusterIP and port: the API server dials exactly what it would dial in a cluster,
// and verifies the certificate for the Service's DNS name. (With --enable-aggregator-routing the API server
// would dial the EndpointSlice address instead, but EndpointSlices refuse loopback addresses, so that route
// cannot be taken on one machine.)

export const WEBHOOK_RBAC_FILE = path.join(REPO_ROOT, 'infra', 'rbac', 'webhook.yaml');
const CHART_DIR = path.join(REPO_ROOT, 'infra', 'helm', 'tcr-assistant');
export const WEBHOOK_SERVICE_ACCOUNT = 'tcr-assistant-webhook';
export const WEBHOOK_SERVICE = 'tcr-assistant-webhook';
export const WEBHOOK_CONFIGURATION = 'tcr-assistant';

export interface WebhookEndpoint {
  clusterIp: string;
  port: number;
}

/** The chart's webhook objects (Secret, Service, MutatingWebhookConfiguration) as `helm template` renders them. */
async function renderWebhookObjects(servicePort: number): Promise<KubernetesObject[]> {
  const helm = path.join(await ensureTools(), 'helm');
  const values = path.join(mkdtempSync(path.join(os.tmpdir(), 'tcr-webhook-values-')), 'values.json');
  writeFileSync(
    values,
    JSON.stringify({
      clusterId: 'local',
      redis: { url: 'redis://127.0.0.1:6379' },
      webhook: { service: { port: servicePort } },
    }),
  );
  try {
    const { stdout } = await run(helm, [
      'template',
      'tcr-assistant',
      CHART_DIR,
      '--namespace',
      SYSTEM_NAMESPACE,
      '-f',
      values,
      ...['webhook-certificate', 'webhook-service', 'webhook-configuration'].flatMap((t) => [
        '--show-only',
        `templates/${t}.yaml`,
      ]),
    ]);
    return parseAllDocuments(stdout)
      .map((d) => d.toJS() as KubernetesObject | null)
      .filter((o): o is KubernetesObject => o !== null)
      .map((o) => loadYaml<KubernetesObject>(JSON.stringify(o)));
  } finally {
    rmSync(path.dirname(values), { recursive: true, force: true });
  }
}

/** Applies the webhook's RBAC, Secret, Service and configuration; returns where the process must listen. */
export async function installWebhook(
  admin: KubeConfig,
  edit: (config: V1MutatingWebhookConfiguration) => void = () => {},
): Promise<WebhookEndpoint> {
  await applyManifests(admin, await readManifests(WEBHOOK_RBAC_FILE));
  const first = await renderWebhookObjects(443);
  const byKind = (objects: KubernetesObject[], kind: string) => objects.filter((o) => o.kind === kind);
  await applyManifests(admin, byKind(first, 'Secret'));
  // A Service left by an earlier install has our port patched in: apply would add a second "https" port.
  await admin
    .makeApiClient(CoreV1Api)
    .deleteNamespacedService({ namespace: SYSTEM_NAMESPACE, name: WEBHOOK_SERVICE })
    .catch(() => {});
  const [service] = (await applyManifests(admin, byKind(first, 'Service'))) as V1Service[];
  const clusterIp = service?.spec?.clusterIP;
  if (!clusterIp?.startsWith('127.'))
    throw new Error(
      `the webhook Service got ClusterIP ${clusterIp}: the control plane needs a loopback range`,
    );
  const port = await findFreePortOn(clusterIp);
  const rendered = await renderWebhookObjects(port);
  // Replace the ports (apply would merge them with the first ones): the Service is only an address here.
  await admin.makeApiClient(CoreV1Api).patchNamespacedService({
    namespace: SYSTEM_NAMESPACE,
    name: WEBHOOK_SERVICE,
    body: [
      {
        op: 'replace',
        path: '/spec/ports',
        value: (byKind(rendered, 'Service')[0] as V1Service).spec?.ports
          ?.filter((p) => p.name === 'https')
          .map((p) => ({ ...p, targetPort: port })),
      },
    ],
  });
  const configs = byKind(rendered, 'MutatingWebhookConfiguration') as V1MutatingWebhookConfiguration[];
  for (const config of configs) edit(config);
  // Replace rather than apply: a test may have changed it, and the caBundle of an earlier run is stale.
  const api = admin.makeApiClient(AdmissionregistrationV1Api);
  for (const config of configs) {
    await api.deleteMutatingWebhookConfiguration({ name: config.metadata?.name ?? '' }).catch(() => {});
    await api.createMutatingWebhookConfiguration({ body: config });
  }
  return { clusterIp, port };
}

/** Removes the configuration (the API server stops calling us); the rest stays for the next install. */
export async function uninstallWebhookConfiguration(admin: KubeConfig): Promise<void> {
  await admin
    .makeApiClient(AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION })
    .catch(() => {});
}

function findFreePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error(`no port on ${host}`));
      else server.close(() => resolve(address.port));
    });
  });
}

export interface WebhookProcess {
  process: ManagedProcess;
  httpPort: number;
  metrics(): Promise<string>;
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** kill -9 of the webhook itself (not only its supervisor). */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `webhook/main.ts` as its own process, as the webhook's ServiceAccount (`kubeconfig` impersonates it),
 * listening on the Service's ClusterIP.
 */
export async function startWebhookProcess(opts: {
  kubeconfig: string;
  endpoint: WebhookEndpoint;
  logFile: string;
  env?: Record<string, string>;
  /** Run this bundle (dist/image/webhook.cjs) with plain node, as the image does, instead of the sources. */
  bundle?: string | undefined;
}): Promise<WebhookProcess> {
  const httpPort = await findFreePort();
  const proc = startProcess({
    name: 'webhook',
    command: process.execPath,
    args: opts.bundle ? [opts.bundle] : ['--import', 'tsx', path.join(REPO_ROOT, 'webhook', 'main.ts')],
    logFile: opts.logFile,
    env: {
      ...process.env,
      KUBECONFIG: opts.kubeconfig,
      WEBHOOK_HOST: opts.endpoint.clusterIp,
      WEBHOOK_PORT: String(opts.endpoint.port),
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'info',
      SHUTDOWN_DELAY_MS: '0',
      // The chart's heap settings for the webhook (values.yaml webhook.nodeOptions).
      NODE_OPTIONS: '--max-semi-space-size=2 --max-old-space-size=96',
      ...opts.env,
    },
  });
  const get = (p: string) => fetch(`http://127.0.0.1:${httpPort}${p}`, { signal: AbortSignal.timeout(2000) });
  const webhook: WebhookProcess = {
    process: proc,
    httpPort,
    metrics: async () => (await get('/metrics')).text(),
    async metric(name, labels = {}) {
      let total = 0;
      for (const line of (await webhook.metrics()).split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          total += Number(line.split(' ').pop());
      }
      return total;
    },
    // 60 s: a cold `node --import tsx` start, then the view's first lists, on 2 loaded cores.
    async waitReady(timeoutMs = 60_000) {
      await waitUntilReady(
        proc,
        async () => (await get('/readyz')).status === 200,
        timeoutMs,
        'webhook /readyz',
      );
    },
    async kill9() {
      const pid = proc.child.pid;
      if (pid !== undefined && proc.child.exitCode === null) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await proc.exited;
    },
    stop: () => proc.stop('SIGTERM', 5000),
  };
  return webhook;
}

/** Installs the webhook on a local control plane and starts it as its ServiceAccount (npm start, bench). */
export async function startLocalWebhook(
  cluster: { dir: string; kubeconfigAs(user: string): Promise<string> },
  admin: KubeConfig,
  env: Record<string, string> = {},
  bundle?: string,
): Promise<WebhookProcess> {
  const endpoint = await installWebhook(admin);
  const webhook = await startWebhookProcess({
    kubeconfig: await cluster.kubeconfigAs(
      `system:serviceaccount:${SYSTEM_NAMESPACE}:${WEBHOOK_SERVICE_ACCOUNT}`,
    ),
    endpoint,
    logFile: path.join(cluster.dir, 'webhook.log'),
    env,
    bundle,
  });
  await webhook.waitReady();
  return webhook;
}
