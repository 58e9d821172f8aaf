// `npm run control-plane [-- --name NAME]`: a control plane and Redis for people, until Ctrl-C.
import { parseArgs } from 'node:util';
import { startControlPlane } from './control-plane.js';
import { CRD_FILE } from './paths.js';
import { startRedis } from './redis.js';

const { values } = parseArgs({ options: { name: { type: 'string', default: 'local' } } });
const cluster = await startControlPlane({ name: values.name ?? 'local' });
const redis = await startRedis();
console.log(`control plane "${cluster.name}" at ${cluster.server}`);
console.log(`  export KUBECONFIG=${cluster.kubeconfigPath}`);
console.log(`  kubectl apply --server-side -f ${CRD_FILE}`);
console.log(`redis at ${redis.url}`);
console.log('Ctrl-C stops both and removes their temp folders.');
const stop = async () => {
  await Promise.allSettled([cluster.stop(), redis.stop()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
