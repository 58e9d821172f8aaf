import type { KubeConfig } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { UPDATER_NAMESPACE } from '../../relay/hosts-updater/config-map.js';
import { type FunctionsEnv, parseEnv } from '../../shared/config.js';
import { TerminalError } from '../../shared/errors.js';
import { loadKubeConfig } from '../../shared/kube/kubeconfig.js';
import { createLogger } from '../../shared/logging.js';
import { connectRedis, enqueueJobs, openQueue } from '../../shared/queue.js';
import { KubeCluster } from '../adapters/kube-cluster.js';
import { KubeSystemObjects } from '../adapters/kube-system-objects.js';
import { auditStreamKey, RedisAudit, RedisFailureStore } from '../adapters/redis-audit.js';
import { defaultCredentialFrom, TencentApiEnv, TencentTcrApi } from '../adapters/tencent-tcr.js';
import type { ReconcileDeps } from '../core/reconcile-namespace.js';
import type { RunJobDeps } from '../core/run-job.js';
import type { TcrApi } from '../core/tcr-api.js';
import { createFunctionsMetrics, type FunctionsMetrics } from './metrics.js';

export interface FunctionsRuntime {
  env: FunctionsEnv;
  redis: Redis;
  queue: Queue;
  log: Logger;
  metrics: FunctionsMetrics;
  runDeps: RunJobDeps;
  auditKey: string;
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
}

/**
 * The composition root shared by every runtime (worker, SCF, CLI): one Redis connection, one queue, one
 * API client per cluster, all cached for the life of the (warm) process.
 */
export function buildFunctionsRuntime(env: FunctionsEnv, overrides: RuntimeOverrides = {}): FunctionsRuntime {
  const log = overrides.log ?? createLogger('functions', env.LOG_LEVEL);
  const metrics = overrides.metrics ?? createFunctionsMetrics();
  const redis = connectRedis(env.REDIS_URL);
  const queue = openQueue(redis, {
    prefix: env.QUEUE_PREFIX,
    attempts: env.JOB_ATTEMPTS,
    backoffMs: env.JOB_BACKOFF_MS,
  });
  const auditKey = auditStreamKey(env.QUEUE_PREFIX);
  const audit = new RedisAudit(redis, auditKey, env.AUDIT_STREAM_MAXLEN);
  const failures = new RedisFailureStore(redis, env.QUEUE_PREFIX);
  const kubeConfigs = overrides.kubeConfigs ?? {
    [env.CLUSTER_ID]: loadKubeConfig({ kubeconfig: env.KUBECONFIG, context: env.KUBE_CONTEXT }),
  };
  const clusters = new Map<string, KubeCluster>();
  const clusterFor = (id: string) => {
    let cluster = clusters.get(id);
    if (!cluster) {
      const kc = kubeConfigs[id];
      if (!kc) {
        throw new TerminalError(
          `unknown cluster "${id}" (this deployment knows: ${Object.keys(kubeConfigs).join(', ')})`,
        );
      }
      cluster = new KubeCluster(id, kc, metrics.observeRequest);
      clusters.set(id, cluster);
    }
    return cluster;
  };
  // Our own namespace's ConfigMap and API-key Secrets, per cluster (the Role of infra/rbac/functions-system.yaml).
  const systemObjects = new Map<string, KubeSystemObjects>();
  const systemObjectsFor = (id: string) => {
    let objects = systemObjects.get(id);
    if (!objects) {
      const kc = kubeConfigs[id];
      if (!kc) throw new TerminalError(`unknown cluster "${id}"`);
      objects = new KubeSystemObjects(kc, UPDATER_NAMESPACE, metrics.observeRequest);
      systemObjects.set(id, objects);
    }
    return objects;
  };
  const tencentEnv = overrides.tencentEnv ?? parseEnv(TencentApiEnv);
  // One SDK adapter (with its per-region/key client cache) for the life of the warm process.
  const tcrApi = overrides.tcrApi ?? TencentTcrApi.fromEnv(tencentEnv);
  const defaultCredential = defaultCredentialFrom(tencentEnv);
  const queuePort = { enqueue: (items: Parameters<typeof enqueueJobs>[1]) => enqueueJobs(queue, items) };

  const runDeps: RunJobDeps = {
    now: () => new Date(),
    audit,
    observer: metrics.observer,
    depsFor(cluster, job): ReconcileDeps {
      return {
        cluster: clusterFor(cluster),
        queue: queuePort,
        failures,
        now: () => new Date(),
        statusDelayMs: env.STATUS_DELAY_MS,
        directUpdateBudget: env.DIRECT_UPDATE_BUDGET,
        log,
        isFinalAttempt: job.attempt >= job.maxAttempts,
      };
    },
    privateEndpointsFor(cluster) {
      const port = clusterFor(cluster);
      const objects = systemObjectsFor(cluster);
      return {
        cluster: port,
        configMaps: objects,
        secrets: objects,
        tcr: tcrApi,
        defaultCredential,
        log,
      };
    },
  };
  return {
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
