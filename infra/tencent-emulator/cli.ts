// `tsx infra/tencent-emulator/cli.ts [--port N]`: the Tencent Cloud API emulator with one demo account, until
// Ctrl-C. Flags win over TENCENT_EMULATOR_* environment variables, which win over the built-in demo values.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startTencentEmulator } from './server.js';

const DEMO = {
  secretId: 'AKIDLOCALEMULATORDEMO0000000000000',
  secretKey: 'local-emulator-demo-secret-key',
  registryId: 'tcr-localdemo',
  region: 'ap-guangzhou',
  username: '100000000001',
  clusterId: 'cls-localdemo',
};

const HELP = `Usage: tsx infra/tencent-emulator/cli.ts [options]

  --port N            listen port on 127.0.0.1 (default: a free port)
  --secret-id ID      env TENCENT_EMULATOR_SECRET_ID   (default ${DEMO.secretId})
  --secret-key KEY    env TENCENT_EMULATOR_SECRET_KEY  (default ${DEMO.secretKey})
  --registry-id ID    env TENCENT_EMULATOR_REGISTRY_ID (default ${DEMO.registryId})
  --region REGION     env TENCENT_EMULATOR_REGION      (default ${DEMO.region})
  --username NAME     env TENCENT_EMULATOR_USERNAME    (default ${DEMO.username})
  --cluster-id ID     env TENCENT_EMULATOR_CLUSTER_ID  (default ${DEMO.clusterId})
  --kubeconfig FILE   env TENCENT_EMULATOR_KUBECONFIG  (returned by DescribeClusterKubeconfig)
`;

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'secret-id': { type: 'string' },
    'secret-key': { type: 'string' },
    'registry-id': { type: 'string' },
    region: { type: 'string' },
    username: { type: 'string' },
    'cluster-id': { type: 'string' },
    kubeconfig: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const env = process.env;
const port = Number(values.port ?? env.TENCENT_EMULATOR_PORT ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be a port number, got ${values.port}`);
  process.exit(2);
}
const secretId = values['secret-id'] ?? env.TENCENT_EMULATOR_SECRET_ID ?? DEMO.secretId;
const secretKey = values['secret-key'] ?? env.TENCENT_EMULATOR_SECRET_KEY ?? DEMO.secretKey;
const registryId = values['registry-id'] ?? env.TENCENT_EMULATOR_REGISTRY_ID ?? DEMO.registryId;
const region = values.region ?? env.TENCENT_EMULATOR_REGION ?? DEMO.region;
const username = values.username ?? env.TENCENT_EMULATOR_USERNAME ?? DEMO.username;
const clusterId = values['cluster-id'] ?? env.TENCENT_EMULATOR_CLUSTER_ID ?? DEMO.clusterId;
const kubeconfigFile = values.kubeconfig ?? env.TENCENT_EMULATOR_KUBECONFIG;
// Without a file the cluster still answers, so a client's happy path can be exercised end to end.
const kubeconfig =
  kubeconfigFile === undefined
    ? `# demo kubeconfig of ${clusterId} from the local Tencent emulator\napiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n`
    : readFileSync(kubeconfigFile, 'utf8');

const emulator = await startTencentEmulator({
  port,
  credentials: [{ secretId, secretKey }],
  registries: [{ registryId, region, username }],
  clusters: [{ clusterId, region, kubeconfig }],
  log: (line) => console.log(line),
});

// The key is never printed: it is the one passed in, or the documented demo key (--help).
console.log(`Tencent Cloud API emulator at ${emulator.url}`);
console.log(`  httpProfile: { endpoint: '${emulator.endpoint}', protocol: 'http://' }`);
console.log(
  `  SecretId ${secretId} (${secretKey === DEMO.secretKey ? 'demo SecretKey, see --help' : 'SecretKey as given'})`,
);
console.log(`  TCR registry ${registryId} in ${region}, token username ${username}`);
console.log(
  `  TKE cluster ${clusterId} in ${region}${kubeconfigFile ? ` (kubeconfig from ${kubeconfigFile})` : ''}`,
);
console.log('Ctrl-C stops it.');

const stop = async () => {
  await emulator.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
