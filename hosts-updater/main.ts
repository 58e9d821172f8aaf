// The hosts-updater process, one per node (DaemonSet): `tsx hosts-updater/main.ts` locally, or the
// bundle `node /app/hosts-updater.cjs` (infra/scripts/build-bundles.mjs) in the image.
// SIGTERM/SIGINT: stop watching, let a write in progress finish, exit 0. Exit 1 on bad configuration or
// when the hosts file was replaced behind the bind mount (the restart gives a fresh mount).
import { z } from 'zod';
import { ms, parseEnv } from '../shared/config.js';
import { SYSTEM_NAMESPACE } from '../shared/contracts/names.js';
import { UPDATER_CONFIG_MAP_NAME } from '../shared/contracts/updater-config.js';
import { describeError } from '../shared/errors.js';
import { connectionOf, KubeClient } from '../shared/kube/kube-client.js';
import { loadKubeTarget } from '../shared/kube/kube-target.js';
import { createLogger } from '../shared/logging.js';
import { runHostsUpdater } from './agent.js';

const nonEmpty = z.string().trim().min(1);

export const HostsUpdaterEnv = z.object({
  /** The node's hosts file as mounted in the container. */
  HOSTS_PATH: nonEmpty.default('/etc/hosts'),
  /** Backup journal of in-place writes; must survive restarts (a hostPath). Default: HOSTS_PATH's directory. */
  STATE_DIR: nonEmpty.optional(),
  NAMESPACE: nonEmpty.default(SYSTEM_NAMESPACE),
  CONFIGMAP_NAME: nonEmpty.default(UPDATER_CONFIG_MAP_NAME),
  /** Kubeconfig file; absent or empty: the in-cluster ServiceAccount. */
  KUBECONFIG: z.string().optional(),
  KUBE_CONTEXT: z.string().optional(),
  RESYNC_INTERVAL_MS: ms('RESYNC_INTERVAL_MS', 1000).default(300_000),
  /** For log lines (the DaemonSet passes spec.nodeName). */
  NODE_NAME: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type HostsUpdaterEnv = z.infer<typeof HostsUpdaterEnv>;

async function main(): Promise<void> {
  const env = parseEnv(HostsUpdaterEnv);
  const log = createLogger('hosts-updater', env.LOG_LEVEL).child(
    env.NODE_NAME ? { node: env.NODE_NAME } : {},
  );
  if (!env.KUBECONFIG && !process.env.KUBERNETES_SERVICE_HOST) {
    // In-cluster config would fail later with a bare "Invalid URL", retried forever.
    throw new Error('not running in a cluster (no KUBERNETES_SERVICE_HOST): set KUBECONFIG');
  }
  // The light transport (shared/kube/kube-client.ts): a DaemonSet on every node should not carry client-node.
  const api = new KubeClient(
    connectionOf(
      loadKubeTarget({ kubeconfig: env.KUBECONFIG || undefined, context: env.KUBE_CONTEXT || undefined }),
    ),
  );
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'stopping');
      stop.abort();
    });
  }
  await runHostsUpdater({
    api,
    namespace: env.NAMESPACE,
    configMapName: env.CONFIGMAP_NAME,
    hostsPath: env.HOSTS_PATH,
    stateDir: env.STATE_DIR,
    resyncIntervalMs: env.RESYNC_INTERVAL_MS,
    log,
    signal: stop.signal,
  });
}

main().then(
  // Exit explicitly: keep-alive sockets of the API client would otherwise hold the process.
  () => process.exit(0),
  (error: unknown) => {
    createLogger('hosts-updater', 'info').fatal({ err: describeError(error) }, 'hosts-updater failed');
    process.exit(1);
  },
);
