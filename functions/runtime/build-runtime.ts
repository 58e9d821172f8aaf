import { KubeConfig } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { type FunctionsEnv, parseEnv } from '../../shared/config.js';
import { clustersOfRegistry, type Fleet, loadFleetFile } from '../../shared/contracts/fleet.js';
import { SYSTEM_NAMESPACE } from '../../shared/contracts/names.js';
import type { SignalBound } from '../../shared/deadline.js';
import { describeError, TerminalError } from '../../shared/errors.js';
import { loadKubeConfig } from '../../shared/kube/kubeconfig.js';
import { createLogger } from '../../shared/logging.js';
import { outageLog } from '../../shared/outage-log.js';
import { connectRedis, enqueueJobs, openQueue } from '../../shared/queue.js';
import type { RedisClient } from '../../shared/redis-connection.js';
import type { ClusterView } from '../adapters/kube/cluster-view.js';
import { KubeCluster } from '../adapters/kube/kube-cluster.js';
import { KubeSystemObjects } from '../adapters/kube/kube-system-objects.js';
import { auditStreamKey, RedisAudit, RedisFailureStore, RedisTokenReports } from '../adapters/redis-audit.js';
import { defaultCredentialFrom, TencentApiEnv, TencentTcrApi } from '../adapters/tencent-tcr.js';
import type { ReconcileDeps, RegistryTokensDeps, TcrApi, TkeApi } from '../core/ports.js';
import { CachedCredentialChecks } from '../core/registry-tokens/credential-sources.js';
import type { JobContext, RunJobDeps } from '../core/run-job.js';
import { createFunctionsMetrics, type FunctionsMetrics } from './metrics.js';

/** One cluster's clients, as the functions' identity (and the KubeConfig they were made from). */
export interface ClusterConnection {
  cluster: KubeCluster;
  system: KubeSystemObjects;
  kc: KubeConfig;
}

export interface FunctionsRuntime {
  env: FunctionsEnv;
  redis: RedisClient;
  queue: Queue;
  log: Logger;
  metrics: FunctionsMetrics;
  runDeps: RunJobDeps;
  auditKey: string;
  /** The fleet served (from FLEET_FILE; else one cluster, CLUSTER_ID). */
  fleet: Fleet;
  /** Each cluster's API and token store, connected on first use and cached (a TKE cluster's kubeconfig too). */
  connect(cluster: string): Promise<ClusterConnection>;
  /** The token refresher's dependencies; `force` rotates those token keys or registry ids now. */
  registryTokensDeps(force?: ReadonlySet<string>): RegistryTokensDeps;
  tokenReports: RedisTokenReports;
  /**
   * The worker's watch-fed views by cluster (runtime/cluster-views.ts): namespace and ServiceAccount jobs read
   * through them. Empty in the SCF and CLI runtimes, whose jobs read live.
   */
  views: Map<string, ClusterView>;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  /** Cluster id → KubeConfig. Default: CLUSTER_ID → KUBECONFIG/KUBE_CONTEXT, or the in-cluster account. */
  kubeConfigs?: Record<string, KubeConfig>;
  log?: Logger;
  metrics?: FunctionsMetrics;
  /** Tencent Cloud settings (API key, endpoint). Default: TENCENTCLOUD_* from process.env. */
  tencentEnv?: TencentApiEnv;
  /** The TCR API. Default: the SDK adapter for `tencentEnv`'s endpoint. */
  tcrApi?: TcrApi;
  /** TKE's DescribeClusterKubeconfig. Default: the same SDK adapter. */
  tkeApi?: TkeApi;
  /** The fleet. Default: FLEET_FILE, else one cluster (CLUSTER_ID). */
  fleet?: Fleet;
}

/** A port bound to a job's signal when it supports that (the SDK adapter does; a test's fake may not). */
function withSignal<T extends object>(port: T, signal: AbortSignal | undefined): T {
  const bindable = port as T & Partial<SignalBound>;
  return signal && typeof bindable.withSignal === 'function' ? (bindable.withSignal(signal) as T) : port;
}

/** Whether a job gets the view's CR-job port (CrJobViewPort): the CR job and its status refresh. */
export function crJobReadsView(cause: JobContext['cause']): boolean {
  return cause?.key.kind === 'imagepullsecret' || cause?.key.kind === 'imagepullsecret-status';
}

/**
 * Whether a job reads through its cluster's view: namespace and ServiceAccount jobs, except the ones whose
 * point is a fresh look (the periodic resync and its fan-out, a person's `reconcile`) and retries (the view
 * that made the first attempt fail would most likely make the next one fail the same way).
 */
export function readsFromView(cause: JobContext['cause'], attempt: number): boolean {
  if (!cause || (cause.key.kind !== 'namespace' && cause.key.kind !== 'serviceaccount')) return false;
  return attempt <= 1 && cause.trigger !== 'resync' && cause.trigger !== 'cli';
}

/**
 * The composition root shared by every runtime (worker, SCF, CLI): one Redis connection, one queue, one
 * API client per cluster, all cached for the life of the (warm) process.
 */
export function buildFunctionsRuntime(env: FunctionsEnv, overrides: RuntimeOverrides = {}): FunctionsRuntime {
  const log = overrides.log ?? createLogger('functions', env.LOG_LEVEL);
  const metrics = overrides.metrics ?? createFunctionsMetrics();
  // The fleet file first: a bad one fails before any connection is opened.
  const fleet: Fleet =
    overrides.fleet ??
    (env.FLEET_FILE
      ? loadFleetFile(env.FLEET_FILE)
      : {
          name: env.CLUSTER_ID,
          clusters: Object.keys(overrides.kubeConfigs ?? { [env.CLUSTER_ID]: true }).map((id) => ({
            id,
            kubeconfig: { context: '(current)' },
          })),
          registries: [],
        });

  const redis = connectRedis(env.REDIS_URL);
  const queue = openQueue(redis, {
    prefix: env.QUEUE_PREFIX,
    attempts: env.JOB_ATTEMPTS,
    backoffMs: env.JOB_BACKOFF_MS,
  });
  // Without a listener BullMQ prints every failed reconnect with its stack: one line per outage instead.
  queue.on('error', outageLog(log, 'queue: Redis unreachable (retrying)'));
  const auditKey = auditStreamKey(env.QUEUE_PREFIX);
  const audit = new RedisAudit(redis, auditKey, env.AUDIT_STREAM_MAXLEN);
  const failures = new RedisFailureStore(redis, env.QUEUE_PREFIX);
  const tencentEnv = overrides.tencentEnv ?? parseEnv(TencentApiEnv);
  // One SDK adapter (with its per-region/key client cache) for the life of the warm process.
  const sdk = TencentTcrApi.fromEnv(tencentEnv);
  const tcrApi = overrides.tcrApi ?? sdk;
  const tkeApi = overrides.tkeApi ?? sdk;
  const defaultCredential = defaultCredentialFrom(tencentEnv);
  /** A cluster's KubeConfig: given by the caller, a context of a kubeconfig file, or TKE's answer. */
  async function loadClusterConfig(id: string): Promise<KubeConfig> {
    const given = overrides.kubeConfigs?.[id];
    if (given) return given;
    const entry = fleet.clusters.find((c) => c.id === id);
    if (!entry) {
      throw new TerminalError(
        `unknown cluster "${id}" (this deployment knows: ${fleet.clusters.map((c) => c.id).join(', ')})`,
      );
    }
    if (!env.FLEET_FILE && !overrides.fleet) {
      return loadKubeConfig({ kubeconfig: env.KUBECONFIG, context: env.KUBE_CONTEXT });
    }
    if (entry.kubeconfig) {
      try {
        return loadKubeConfig({
          kubeconfig: entry.kubeconfig.path ?? env.KUBECONFIG,
          context: entry.kubeconfig.context,
        });
      } catch (error) {
        throw new TerminalError(`fleet cluster ${id}: ${describeError(error)}`);
      }
    }
    const tke = entry.tke!;
    if (!defaultCredential) {
      throw new TerminalError(
        `fleet cluster ${id} is TKE cluster ${tke.clusterId}: its kubeconfig needs TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY`,
      );
    }
    const text = await tkeApi.describeClusterKubeconfig({
      clusterId: tke.clusterId,
      region: tke.region,
      extranet: tke.extranet,
      credential: defaultCredential,
    });
    const kc = new KubeConfig();
    try {
      kc.loadFromString(text);
    } catch {
      // The parser's message quotes the document, which holds the cluster's credentials: name the cluster only.
      throw new TerminalError(`fleet cluster ${id}: TKE returned a kubeconfig that does not load`);
    }
    return kc;
  }

  // One API client per cluster for the life of the warm instance; a failed connect is not cached.
  const connections = new Map<string, Promise<ClusterConnection>>();
  const connect = (id: string) => {
    let connection = connections.get(id);
    if (!connection) {
      connection = loadClusterConfig(id).then((kc) => {
        // Our own namespace's ConfigMap, API-key and token Secrets (infra/rbac/functions-system.yaml).
        const system = new KubeSystemObjects(kc, SYSTEM_NAMESPACE, metrics.observeRequest);
        const checks = new CachedCredentialChecks({ secrets: system, defaultCredential });
        return { cluster: new KubeCluster(id, kc, metrics.observeRequest, system, checks), system, kc };
      });
      connection.catch(() => connections.delete(id));
      connections.set(id, connection);
    }
    return connection;
  };
  const tokenReports = new RedisTokenReports(redis, env.QUEUE_PREFIX);
  const views = new Map<string, ClusterView>();
  const queuePort = { enqueue: (items: Parameters<typeof enqueueJobs>[1]) => enqueueJobs(queue, items) };

  const runDeps: RunJobDeps = {
    now: () => new Date(),
    audit,
    observer: metrics.observer,
    async depsFor(cluster, job): Promise<ReconcileDeps> {
      const live = (await connect(cluster)).cluster.withSignal(job.signal);
      const view = views.get(cluster);
      return {
        cluster:
          view && job.cause && readsFromView(job.cause, job.attempt)
            ? view.over(live, job.cause.key, { liveCrs: job.cause.trigger === 'fanout' })
            : live,
        // A CR job's rotation plans its rewrites from the view's Secrets (its full plan still reads live); the
        // status refresh counts from it (ADR-015 rule 8).
        view: crJobReadsView(job.cause) ? view : undefined,
        signal: job.signal,
        queue: queuePort,
        failures,
        now: () => new Date(),
        statusDelayMs: env.STATUS_DELAY_MS,
        directUpdateBudget: env.DIRECT_UPDATE_BUDGET,
        adoptAddonSecrets: env.ADOPT_ADDON_SECRETS,
        directUpdateMs: env.DIRECT_UPDATE_MS,
        log: job.log ?? log,
        isFinalAttempt: job.attempt >= job.maxAttempts,
        trigger: job.cause?.trigger,
      };
    },
    async privateEndpointsFor(cluster, job) {
      const { cluster: port, system } = await connect(cluster);
      const bound = system.withSignal(job.signal);
      return {
        cluster: port.withSignal(job.signal),
        configMaps: bound,
        secrets: bound,
        tcr: withSignal(tcrApi, job.signal),
        defaultCredential,
        log: job.log ?? log,
        signal: job.signal,
      };
    },
    registryTokens: (job) => registryTokensDeps(undefined, job.signal, job.log),
  };
  function registryTokensDeps(
    force?: ReadonlySet<string>,
    signal?: AbortSignal,
    jobLog?: Logger,
  ): RegistryTokensDeps {
    return {
      fleetName: fleet.name,
      clusters: fleet.clusters.map((c) => c.id),
      registries: fleet.registries.map((r) => ({ ...r, clusters: clustersOfRegistry(fleet, r) })),
      connect: async (id) => {
        const { cluster, system } = await connect(id);
        const bound = system.withSignal(signal);
        return { cluster: cluster.withSignal(signal), tokens: bound, secrets: bound };
      },
      tcr: withSignal(tcrApi, signal),
      defaultCredential,
      queue: queuePort,
      reports: tokenReports,
      now: () => new Date(),
      revokeGraceMs: env.TOKEN_REVOKE_GRACE_SECONDS * 1000,
      clusterTimeoutMs: env.TOKEN_CLUSTER_TIMEOUT_MS,
      force,
      log: jobLog ?? log,
      signal,
    };
  }
  return {
    fleet,
    connect,
    registryTokensDeps,
    tokenReports,
    views,
    env,
    redis,
    queue,
    log,
    metrics,
    runDeps,
    auditKey,
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}
