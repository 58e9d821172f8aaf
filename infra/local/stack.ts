import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { TencentTcrApi } from '../../functions/adapters/tencent-tcr.js';
import { buildFunctionsRuntime, type FunctionsRuntime } from '../../functions/runtime/build-runtime.js';
import { startWorkerWatches } from '../../functions/runtime/cluster-views.js';
import { keepSchedules } from '../../functions/runtime/schedule-keeper.js';
import { startWorker } from '../../functions/runtime/worker.js';
import { FunctionsEnv, parseEnv } from '../../shared/config.js';
import { waitForCrdEstablished } from '../../shared/kube/crd.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { startTencentEmulator, type TencentEmulator } from '../tencent-emulator/server.js';
import { type ControlPlane, startControlPlane } from './control-plane.js';
import { findFreePort } from './free-port.js';
import { writeHelloImage } from './images.js';
import { type LocalNode, probeNodeSupport, startNode } from './node.js';
import {
  CRD_FILE,
  CRD_NAME,
  FUNCTIONS_RBAC_FILE,
  FUNCTIONS_SERVICE_ACCOUNT,
  FUNCTIONS_SYSTEM_RBAC_FILE,
  NAMESPACE_FILE,
  RELAY_RBAC_FILE,
  RELAY_SERVICE_ACCOUNT,
  REPO_ROOT,
  SYSTEM_NAMESPACE,
} from './paths.js';
import { logOutputTo } from './processes.js';
import { type LocalRedis, startRedis } from './redis.js';
import { type LocalRedisCluster, startRedisCluster } from './redis-cluster.js';
import { createTokenSigner, type LocalRegistry, pushImage, startRegistry } from './registry.js';
import { type DeployedScf, deployScfFunction } from './scf-runtime.js';
import { startLocalWebhook, type WebhookProcess } from './webhook.js';

/** The registry the local emulator serves (the sample spec.tcr CR names it). */
export const LOCAL_REGISTRY = 'tcr-local1';
export const LOCAL_REGION = 'ap-guangzhou';

export interface LocalStack {
  /** The Tencent Cloud API emulator the functions use. */
  emulator: TencentEmulator;
  /** The emulator's API key the functions use (made up per run; for the CLI against the demo). */
  apiKey: { secretId: string; secretKey: string };
  cluster: ControlPlane;
  /** One redis-server, or (`redisCluster`) a Redis Cluster of 3 primaries and 3 replicas. */
  redis: LocalRedis | LocalRedisCluster;
  admin: KubeConfig;
  functions: FunctionsRuntime;
  /** The BullMQ workers (runtime `worker`); absent on SCF. */
  worker: Worker | undefined;
  /** The function deployed to the emulator's SCF (runtime `scf`). */
  scf: DeployedScf | undefined;
  relay: ChildProcess;
  relayPort: number;
  relayLog: string;
  /** The admission webhook (absent with `webhook: false`). */
  webhook: WebhookProcess | undefined;
  clusterId: string;
  /** With `node`: the node (undefined when this machine cannot host one: see `nodeUnavailable`). */
  node?: LocalNode;
  nodeUnavailable?: string;
  /** With `node`: the TLS registry of LOCAL_REGISTRY (token service: the emulator), trusted by the node. */
  registry?: LocalRegistry;
  /** With `registry`: a small image pushed there (as a CI system would, with a token of its own). */
  demoImage?: string;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** See ControlPlaneOptions.controllerManagerQps. */
  controllerManagerQps?: number | undefined;
  clusterId?: string;
  workerConcurrency?: number;
  statusDelayMs?: number;
  log?: Logger;
  relayEnv?: Record<string, string>;
  /** Run this bundled relay (dist/relay/main.cjs) with plain node instead of the TypeScript sources. */
  relayBundle?: string;
  /** Start the admission webhook (default true); its environment. */
  webhook?: boolean;
  webhookEnv?: Record<string, string>;
  /** Run this bundled webhook (dist/image/webhook.cjs) with plain node instead of the TypeScript sources. */
  webhookBundle?: string;
  /**
   * Where the functions run: `worker` (BullMQ workers in this process, the default) or `scf` (the bundle on
   * the emulator's SCF, woken by the relay, with serverless.yml's timers; infra/local/scf-runtime.ts).
   */
  runtime?: 'worker' | 'scf';
  /** SCF: the function's concurrency limit (default: the relay's slots + its three timers). */
  scfConcurrency?: number;
  /** SCF: extra environment of the function and of the relay's waker. */
  scfEnv?: Record<string, string>;
  /**
   * Attach a real node (infra/local/node.ts) and start LOCAL_REGISTRY's TLS registry, so that pods pull with
   * the tokens the functions issue. Where the machine cannot host a node, the stack runs without one and
   * says why in `nodeUnavailable`.
   */
  node?: boolean;
  /** Queue, audit and the rest on a real Redis Cluster (3 primaries, 3 replicas) instead of one server. */
  redisCluster?: boolean;
}

/**
 * What a control plane needs before our components run as themselves: the CRD (established), our namespace
 * and the functions' RBAC, and the relay's unless `relay: false` (a fleet member whose relay is not run).
 */
export async function installCrdAndRbac(admin: KubeConfig, opts: { relay?: boolean } = {}): Promise<void> {
  await applyManifests(admin, await readManifests(CRD_FILE));
  await waitForCrdEstablished(admin, CRD_NAME);
  const files = [NAMESPACE_FILE, FUNCTIONS_RBAC_FILE, FUNCTIONS_SYSTEM_RBAC_FILE];
  if (opts.relay !== false) files.push(RELAY_RBAC_FILE);
  for (const file of files) await applyManifests(admin, await readManifests(file));
}

/**
 * The whole pipeline on one machine, each part as it runs in production: a control plane with the CRD and
 * our RBAC, Redis, the relay as its own process (as its ServiceAccount), and the functions as BullMQ
 * workers in this process (as theirs). Used by `npm start` and the benchmark.
 */
export async function startLocalStack(opts: StackOptions = {}): Promise<LocalStack> {
  const clusterId = opts.clusterId ?? 'local';
  const [cluster, redis] = await Promise.all([
    startControlPlane({
      name: clusterId,
      controllerManagerQps: opts.controllerManagerQps,
      forNode: opts.node ?? false,
    }),
    opts.redisCluster ? startRedisCluster() : startRedis(),
  ]);
  const support = opts.node ? probeNodeSupport(cluster.binDir) : undefined;
  const nodeStarting = support?.ok ? startNode(cluster) : Promise.resolve(undefined);
  nodeStarting.catch(() => {});
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.kubeconfigPath);
  await installCrdAndRbac(admin);
  const functionsKc = new KubeConfig();
  functionsKc.loadFromFile(
    await cluster.kubeconfigAs(`system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`),
  );
  const env = parseEnv(FunctionsEnv, {
    REDIS_URL: redis.url,
    CLUSTER_ID: clusterId,
    WORKER_CONCURRENCY: String(opts.workerConcurrency ?? 16),
    STATUS_DELAY_MS: String(opts.statusDelayMs ?? 1000),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  // The Tencent Cloud API is the local emulator (signature-checked, real shapes): spec.tcr CRs get tokens
  // for its registry LOCAL_REGISTRY, with a key made up for this run.
  const apiKey = {
    secretId: `AKIDLOCAL${randomBytes(8).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(24).toString('hex'),
  };
  // The emulator also plays the registry's token service (instance tokens in, JWTs out).
  const signer = await createTokenSigner(cluster.dir);
  const emulator = await startTencentEmulator({
    credentials: [apiKey],
    registries: [{ registryId: LOCAL_REGISTRY, region: LOCAL_REGION }],
    // SCF instances' output goes next to the other logs of the run.
    scf: { logDir: cluster.dir },
    registryTokenService: {
      registryId: LOCAL_REGISTRY,
      service: LOCAL_REGISTRY,
      issuer: 'tcr-emulator',
      keyPem: signer.keyPem,
      certDerBase64: signer.certDerBase64,
    },
  });
  const node = await nodeStarting;
  const registry = node
    ? await startRegistry({
        realm: `${emulator.url}/service/token`,
        service: LOCAL_REGISTRY,
        issuer: 'tcr-emulator',
        signer,
        tls: { pki: cluster.pki },
      })
    : undefined;
  let demoImage: string | undefined;
  if (node && registry) {
    await node.trustRegistry(registry.host, registry.caFile ?? '');
    const pusher = await new TencentTcrApi({
      endpoint: emulator.endpoint,
      protocol: 'http://',
      timeoutSeconds: 10,
    }).createInstanceToken({
      registryId: LOCAL_REGISTRY,
      region: LOCAL_REGION,
      credential: apiKey,
      tokenType: 'temp',
      desc: 'npm start: push the demo image',
    });
    const image = await writeHelloImage(
      path.join(cluster.dir, 'demo-image'),
      `${registry.host}/demo/hello:v1`,
    );
    demoImage = await pushImage(image, registry, 'demo/hello:v1', pusher);
    // The demo counts the functions' calls to the Tencent API, not this one.
    emulator.resetCalls();
  }
  const functions = buildFunctionsRuntime(env, {
    kubeConfigs: { [clusterId]: functionsKc },
    tencentEnv: {
      TENCENTCLOUD_SECRET_ID: apiKey.secretId,
      TENCENTCLOUD_SECRET_KEY: apiKey.secretKey,
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
      TENCENTCLOUD_TIMEOUT_SECONDS: 10,
    },
    ...(opts.log ? { log: opts.log } : {}),
  });
  const runtime = opts.runtime ?? 'worker';
  const worker = runtime === 'worker' ? startWorker(functions) : undefined;
  const schedules = worker ? keepSchedules(functions) : undefined;
  await schedules?.ready;
  const secretWatch = worker ? await startWorkerWatches(functions) : undefined;
  const scf =
    runtime === 'scf'
      ? deployScfFunction({
          emulator,
          region: LOCAL_REGION,
          concurrency: opts.scfConcurrency ?? 7,
          environment: {
            REDIS_URL: redis.url,
            CLUSTER_ID: clusterId,
            KUBECONFIG: await cluster.kubeconfigAs(
              `system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`,
            ),
            WORKER_CONCURRENCY: String(opts.workerConcurrency ?? 16),
            STATUS_DELAY_MS: String(opts.statusDelayMs ?? 1000),
            LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
            TENCENTCLOUD_SECRET_ID: apiKey.secretId,
            TENCENTCLOUD_SECRET_KEY: apiKey.secretKey,
            TENCENTCLOUD_ENDPOINT: emulator.endpoint,
            TENCENTCLOUD_PROTOCOL: 'http://',
            ...opts.scfEnv,
          },
        })
      : undefined;

  const relayPort = await findFreePort();
  const relayLog = path.join(cluster.dir, 'relay.log');
  const relayArgs = opts.relayBundle
    ? [opts.relayBundle]
    : ['--import', 'tsx', path.join(REPO_ROOT, 'relay', 'main.ts')];
  const relay = spawn(process.execPath, relayArgs, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KUBECONFIG: await cluster.kubeconfigAs(
        `system:serviceaccount:${SYSTEM_NAMESPACE}:${RELAY_SERVICE_ACCOUNT}`,
      ),
      REDIS_URL: redis.url,
      CLUSTER_ID: clusterId,
      HTTP_PORT: String(relayPort),
      LOG_LEVEL: 'info',
      // The relay Deployment's heap settings (see relay.nodeOptions in the Helm chart and bench/relay-footprint.ts).
      NODE_OPTIONS: '--max-semi-space-size=2 --max-old-space-size=96',
      ...scf?.relayEnv,
      ...opts.relayEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  logOutputTo(relay, relayLog);
  const killRelay = () => relay.kill('SIGKILL');
  process.once('exit', killRelay);
  const webhook =
    opts.webhook === false
      ? undefined
      : await startLocalWebhook(
          cluster,
          admin,
          { LOG_LEVEL: 'warn', ...opts.webhookEnv },
          opts.webhookBundle,
        );

  return {
    cluster,
    redis,
    emulator,
    apiKey,
    admin,
    functions,
    worker,
    scf,
    relay,
    relayPort,
    relayLog,
    webhook,
    clusterId,
    ...(node ? { node } : {}),
    ...(support && !support.ok ? { nodeUnavailable: support.reason } : {}),
    ...(registry ? { registry } : {}),
    ...(demoImage ? { demoImage } : {}),
    async stop() {
      process.removeListener('exit', killRelay);
      if (relay.exitCode === null) {
        relay.kill('SIGTERM');
        await new Promise((r) => relay.once('exit', r));
      }
      await webhook?.stop();
      schedules?.stop();
      await secretWatch?.stop();
      await worker?.close();
      await functions.close();
      await Promise.allSettled([node?.stop(), registry?.stop()]);
      await Promise.allSettled([cluster.stop(), redis.stop(), emulator.stop()]);
    },
  };
}

/** Waits until the relay answers /readyz. */
export async function waitForRelay(stack: LocalStack, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${stack.relayPort}/readyz`, {
      signal: AbortSignal.timeout(1000),
    })
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`relay not ready after ${timeoutMs} ms; see ${stack.relayLog}`);
}
