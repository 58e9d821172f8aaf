import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from '../../infra/local/control-plane.js';
import {
  CRD_FILE,
  CRD_NAME,
  FUNCTIONS_RBAC_FILE,
  FUNCTIONS_SERVICE_ACCOUNT,
  NAMESPACE_FILE,
  RBAC_DIR,
  RELAY_RBAC_FILE,
  RELAY_SERVICE_ACCOUNT,
  REPO_ROOT,
  SYSTEM_NAMESPACE,
} from '../../infra/local/paths.js';
import { type LocalRedis, startRedis } from '../../infra/local/redis.js';
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
  }
}

let cluster: ControlPlane | undefined;
let redis: LocalRedis | undefined;

export default async function setup(project: TestProject) {
  const started = Date.now();
  try {
    [cluster, redis] = await Promise.all([startControlPlane({ name: 'e2e' }), startRedis()]);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await applyManifests(kc, await readManifests(CRD_FILE));
    await waitForCrdEstablished(kc, CRD_NAME);
    // What infra/ ships: the tests run our code as these ServiceAccounts (impersonation).
    await applyManifests(kc, await readManifests(NAMESPACE_FILE));
    await applyManifests(kc, await readManifests(FUNCTIONS_RBAC_FILE));
    await applyManifests(kc, await readManifests(path.join(RBAC_DIR, 'functions-system.yaml')));
    // The hosts-updater's ServiceAccount and Role (not its DaemonSet: there are no nodes to run it on).
    const hostsUpdater = await readManifests(
      path.join(REPO_ROOT, 'infra', 'hosts-updater', 'hosts-updater.yaml'),
    );
    await applyManifests(
      kc,
      hostsUpdater.filter((o) => o.kind !== 'DaemonSet'),
    );
    await applyManifests(kc, await readManifests(RELAY_RBAC_FILE));
  } catch (error) {
    await teardown();
    throw error;
  }
  console.log(
    `[e2e] control plane ${cluster.server} + Redis ${redis.url} ready in ${Date.now() - started} ms`,
  );
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
    'functionsKubeconfigPath',
    await cluster.kubeconfigAs(`system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`),
  );
  return teardown;
}

async function teardown() {
  await Promise.allSettled([cluster?.stop(), redis?.stop()]);
}
