// `npm start`: the local embedded default. Starts a real control plane and Redis on loopback, installs the
// CRD and the seed's sample CR, prints it the way `kubectl get ipss` does, and keeps running (re-printing
// when it changes) until Ctrl-C, which stops everything and removes the temp folders.
import { KubeConfig } from '@kubernetes/client-node';
import { waitForCrdEstablished } from '../../shared/kube/crd.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { formatTable, getClusterCustomObjectTable } from '../../shared/kube/table.js';
import { GROUP, PLURAL, VERSION } from '../../shared/names.js';
import { startControlPlane } from './control-plane.js';
import { CRD_FILE, CRD_NAME, SAMPLE_CR_FILE } from './paths.js';
import { startRedis } from './redis.js';

const say = (msg: string) => console.log(`[tcr-assistant] ${msg}`);

const started = Date.now();
const cluster = await startControlPlane({ name: 'local' });
const redis = await startRedis();
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`${signal}: stopping control plane and Redis`);
  await Promise.allSettled([cluster.stop(), redis.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  say(
    `control plane ${cluster.server} and Redis ${redis.url} (v${redis.version}) up in ${Date.now() - started} ms`,
  );
  say(`kubeconfig: ${cluster.kubeconfigPath}`);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  await applyManifests(kc, await readManifests(CRD_FILE));
  await waitForCrdEstablished(kc, CRD_NAME);
  say(`CRD ${CRD_NAME} established`);
  await applyManifests(kc, await readManifests(SAMPLE_CR_FILE));
  say('applied the sample ImagePullSecret; `kubectl get ipss`:');
  let last = '';
  for (;;) {
    const table = formatTable(await getClusterCustomObjectTable(kc, GROUP, VERSION, PLURAL));
    if (table !== last) {
      console.log(`\n${table}\n`);
      last = table;
    }
    if (process.env.TCR_LOCAL_EXIT_AFTER_READY === '1') break;
    await new Promise((r) => setTimeout(r, 2_000));
  }
  await shutdown('done');
} catch (error) {
  console.error(`[tcr-assistant] failed: ${error instanceof Error ? error.message : String(error)}`);
  await Promise.allSettled([cluster.stop(), redis.stop()]);
  process.exit(1);
}
