import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from '../../infra/local/control-plane.js';
import { type LocalNode, probeNodeSupport, SHIELDED_SYSCTLS, startNode } from '../../infra/local/node.js';
import {
  CRD_FILE,
  CRD_NAME,
  FUNCTIONS_RBAC_FILE,
  FUNCTIONS_SERVICE_ACCOUNT,
  NAMESPACE_FILE,
  RBAC_DIR,
  RELAY_RBAC_FILE,
  RELAY_SERVICE_ACCOUNT,
  SYSTEM_NAMESPACE,
} from '../../infra/local/paths.js';
import { type LocalRedis, startRedis } from '../../infra/local/redis.js';
import { WEBHOOK_RBAC_FILE, WEBHOOK_SERVICE_ACCOUNT } from '../../infra/local/webhook.js';
import { waitForCrdEstablished } from '../../shared/kube/crd.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
    clusterName: string;
    apiServer: string;
    redisUrl: string;
    redisPort: number;
    /** A kubeconfig file that impersonates the functions' ServiceAccount (for out-of-process runtimes). */
    functionsKubeconfigPath: string;
    relayKubeconfigPath: string;
    /** The run's node (NodeInfo as JSON, for `nodeClient`), or '' when this machine cannot host one. */
    nodeInfo: string;
    /** Why there is no node ('' when there is one): node tests are skipped with this reason. */
    nodeUnavailable: string;
    /** The machine's values of the sysctls the kubelet rewrites, read before the node started. */
    hostSysctls: Record<string, string>;
    /** The run's CA (certificate and key): TLS registries and other servers the node must trust. */
    caFiles: { caCert: string; caKey: string };
    /** ...and one that impersonates the admission webhook's. */
    webhookKubeconfigPath: string;
  }
}

let cluster: ControlPlane | undefined;
let redis: LocalRedis | undefined;
let node: LocalNode | undefined;

export default async function setup(project: TestProject) {
  const started = Date.now();
  try {
    [cluster, redis] = await Promise.all([startControlPlane({ name: 'e2e', forNode: true }), startRedis()]);
    const support = probeNodeSupport(cluster.binDir);
    hostSysctls = readSysctls();
    // One node for the whole run, started beside the manifests (it takes ~2 s; per file it would add up).
    const nodeStarting = support.ok ? startNode(cluster) : Promise.resolve(undefined);
    nodeUnavailable = support.ok ? '' : support.reason;
    if (!support.ok) {
      console.log(
        `[e2e] NO NODE: this machine cannot host one (${support.reason}); node tests will be skipped`,
      );
    }
    nodeStarting.catch(() => {});
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await applyManifests(kc, await readManifests(CRD_FILE));
    await waitForCrdEstablished(kc, CRD_NAME);
    // What infra/ ships: the tests run our code as these ServiceAccounts (impersonation).
    await applyManifests(kc, await readManifests(NAMESPACE_FILE));
    await applyManifests(kc, await readManifests(FUNCTIONS_RBAC_FILE));
    await applyManifests(kc, await readManifests(path.join(RBAC_DIR, 'functions-system.yaml')));
    // The hosts-updater's ServiceAccount and Role (its DaemonSet ships in the chart).
    await applyManifests(kc, await readManifests(path.join(RBAC_DIR, 'hosts-updater.yaml')));
    await applyManifests(kc, await readManifests(RELAY_RBAC_FILE));
    await applyManifests(kc, await readManifests(WEBHOOK_RBAC_FILE));
    node = await nodeStarting;
  } catch (error) {
    await teardown();
    throw error;
  }
  console.log(
    `[e2e] control plane ${cluster.server} + Redis ${redis.url}${node ? ` + node ${node.info.name} (Ready in ${node.startMs} ms)` : ''} ready in ${Date.now() - started} ms`,
  );
  project.provide('nodeInfo', node ? JSON.stringify(node.info) : '');
  project.provide('nodeUnavailable', nodeUnavailable);
  project.provide('hostSysctls', hostSysctls);
  project.provide('caFiles', { caCert: cluster.pki.caCert, caKey: cluster.pki.caKey });
  project.provide('kubeconfigPath', cluster.kubeconfigPath);
  project.provide('clusterName', cluster.name);
  project.provide('apiServer', cluster.server);
  project.provide('redisUrl', redis.url);
  project.provide('redisPort', redis.port);
  project.provide(
    'relayKubeconfigPath',
    await cluster.kubeconfigAs(`system:serviceaccount:${SYSTEM_NAMESPACE}:${RELAY_SERVICE_ACCOUNT}`),
  );
  project.provide(
    'webhookKubeconfigPath',
    await cluster.kubeconfigAs(`system:serviceaccount:${SYSTEM_NAMESPACE}:${WEBHOOK_SERVICE_ACCOUNT}`),
  );
  project.provide(
    'functionsKubeconfigPath',
    await cluster.kubeconfigAs(`system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`),
  );
  return teardown;
}

let nodeUnavailable = '';
let hostSysctls: Record<string, string> = {};

function readSysctls(): Record<string, string> {
  return Object.fromEntries(
    SHIELDED_SYSCTLS.map((key) => [
      key,
      readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim(),
    ]),
  );
}

async function teardown() {
  // The network rule, checked over the whole run: the node sampled every socket of every process it ran.
  const violations = node?.networkViolations() ?? [];
  await node?.stop();
  await Promise.allSettled([cluster?.stop(), redis?.stop()]);
  if (violations.length > 0) {
    process.exitCode = 1;
    throw new Error(`network rule violated during the run (non-loopback peers):\n${violations.join('\n')}`);
  }
}
