// `npm run control-plane [-- --name NAME] [-- --node]`: a control plane and Redis for people, until Ctrl-C.
// With --node, a real node (kubelet + containerd, loopback only; docs/adr-008-real-node.md) is attached; with
// --redis-cluster, Redis is a Redis Cluster of 3 primaries and 3 replicas (infra/local/redis-cluster.ts).
import { parseArgs } from 'node:util';
import { startControlPlane } from './control-plane.js';
import { type LocalNode, probeNodeSupport, startNode } from './node.js';
import { CRD_FILE } from './paths.js';
import { startRedis } from './redis.js';
import { startRedisCluster } from './redis-cluster.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'local' },
    node: { type: 'boolean', default: false },
    'redis-cluster': { type: 'boolean', default: false },
  },
});
const cluster = await startControlPlane({ name: values.name ?? 'local', forNode: values.node ?? false });
const redis = values['redis-cluster'] ? await startRedisCluster() : await startRedis();
let node: LocalNode | undefined;
if (values.node) {
  const support = probeNodeSupport(cluster.binDir);
  if (support.ok) node = await startNode(cluster);
  else console.log(`no node: this machine cannot host one (${support.reason})`);
}
console.log(`control plane "${cluster.name}" at ${cluster.server}`);
console.log(`  kubeconfig: ${cluster.kubeconfigPath}`);
console.log(`  export KUBECONFIG=${cluster.kubeconfigPath}`);
console.log(`  kubectl apply --server-side -f ${CRD_FILE}`);
if (node) {
  console.log(`node ${node.info.name} Ready in ${node.startMs} ms; logs in ${node.info.dir}/log`);
  console.log('  pods need hostNetwork: true (the only network); nothing can be pulled from the internet:');
  console.log(`  ctr -a ${node.info.containerdSocket} -n k8s.io images import <oci-or-docker-archive.tar>`);
}
console.log(`redis at ${redis.url}`);
console.log(`Ctrl-C stops ${node ? 'the node, ' : ''}both and removes their temp folders.`);
const stop = async () => {
  await node?.stop();
  await Promise.allSettled([cluster.stop(), redis.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
