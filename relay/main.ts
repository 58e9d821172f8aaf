// The relay process: `tsx relay/main.ts` locally (KUBECONFIG) or in a cluster (its ServiceAccount).
// Configuration from the environment (see relay/config.ts); SIGTERM stops watching, flushes, releases the Lease.
import { parseEnv } from '../shared/config.js';
import { describeError } from '../shared/errors.js';
import { serveHealthHttp } from '../shared/http-server.js';
import { connectionOf, KubeClient } from '../shared/kube/kube-client.js';
import { loadKubeTarget } from '../shared/kube/kube-target.js';
import { createLogger } from '../shared/logging.js';
import { openQueue } from '../shared/queue.js';
import { createRedisClient } from '../shared/redis-connection.js';
import { RelayEnv } from './config.js';
import { LeaderElector } from './leader-election.js';
import { describeLeaseTiming } from './lease-timing.js';
import { createRelayMetrics } from './metrics.js';
import { Relay } from './relay.js';
import { startScfWaker } from './scf-wake.js';

async function main(): Promise<void> {
  const env = parseEnv(RelayEnv);
  const log = createLogger('relay', env.LOG_LEVEL).child({ cluster: env.CLUSTER_ID, identity: env.POD_NAME });
  // The light transport (one keep-alive agent for the Lease and the watches): not client-node, whose
  // KubeConfig alone loads every generated API and model (most of the relay's RSS, issue #15).
  const kube = new KubeClient(
    connectionOf(loadKubeTarget({ kubeconfig: env.KUBECONFIG, context: env.KUBE_CONTEXT })),
  );
  const metrics = createRelayMetrics();
  // Producers fail fast while Redis is down (no offline queue): the relay keeps dirty keys itself.
  const redis = createRedisClient(env.REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  redis.on('error', () => {});
  const queue = openQueue(redis, {
    prefix: env.QUEUE_PREFIX,
    attempts: env.JOB_ATTEMPTS,
    backoffMs: env.JOB_BACKOFF_MS,
  });
  queue.on('error', () => {});
  // Off unless SCF_WAKE_FUNCTION is set (the functions then run on Tencent SCF).
  const waker = await startScfWaker(redis, env.QUEUE_PREFIX, metrics.registry, log);
  let relay: Relay | undefined;
  const elector = new LeaderElector(kube, {
    namespace: env.LEASE_NAMESPACE,
    name: env.LEASE_NAME,
    identity: env.POD_NAME,
    leaseDurationMs: env.LEASE_DURATION_MS,
    renewMs: env.LEASE_RENEW_MS,
    retryMs: env.LEASE_RETRY_MS,
    watchMetrics: metrics,
    watchdogSilenceMs: env.WATCHDOG_SILENCE_MS,
    log,
    onStartedLeading: () => {
      log.info('leading: relaying events');
      metrics.leader.set(1);
      relay = new Relay({
        api: kube,
        clusterId: env.CLUSTER_ID,
        queue,
        log,
        metrics,
        resyncPeriodMs: env.RESYNC_PERIOD_MS,
        watchdogSilenceMs: env.WATCHDOG_SILENCE_MS,
        maxDirtyKeys: env.DIRTY_MAX_KEYS,
        flushIntervalMs: env.FLUSH_INTERVAL_MS,
        onEnqueued: waker ? () => waker.poke() : undefined,
      });
      relay.start();
    },
    onStoppedLeading: async () => {
      log.info('not leading: stopped relaying');
      metrics.leader.set(0);
      await relay?.stop();
      relay = undefined;
    },
  });
  const server = await serveHealthHttp(env.HTTP_PORT, metrics.registry, () => {
    if (!elector.isLeader) return { ready: true, detail: 'standby' };
    if (!relay?.ready)
      return {
        ready: false,
        detail:
          relay?.publisher.healthy === false || relay?.epoch.healthy === false
            ? 'redis unreachable'
            : 'syncing',
      };
    return { ready: true, detail: 'leading' };
  });
  elector.start();
  log.info({ port: env.HTTP_PORT, lease: describeLeaseTiming(elector.leaseTiming) }, 'relay started');

  const shutdown = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    await elector.stop();
    waker?.stop();
    server.close();
    await queue.close().catch(() => {});
    redis.disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(`relay: ${describeError(error)}`);
  process.exit(1);
});
