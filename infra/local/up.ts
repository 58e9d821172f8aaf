// `npm start`: the local embedded default, the whole pipeline. A real control plane and Redis on loopback,
// the relay (as its ServiceAccount) and the functions as BullMQ workers (as theirs), the seed's sample CR,
// then a few namespaces and a ServiceAccount `kung` created, with convergence shown as it happens (the audit
// stream, `kubectl get ipss`). Runs until Ctrl-C or SIGINT/SIGTERM (to this process, or to npm: package.json
// execs node, so npm's forwarded signal reaches it), which stops everything and removes the temp folders.
// With a real node (the default; `npm start -- --no-node` or TCR_NODE=0 turns it off, and a machine that
// cannot host one says why) the demo ends with a Deployment in demo-1, whose YAML names no imagePullSecrets,
// running an image from the local TLS registry with the token tcr-assistant issued.
// TCR_LOCAL_EXIT_AFTER_READY=1 exits (0) once the demo has converged.
// `--runtime scf` runs the functions as Tencent SCF runs them instead (the bundle on the emulator's SCF, woken
// by the relay's asynchronous Invoke, with serverless.yml's timers as the safety net).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { followAudit } from '../../functions/adapters/audit-reader.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/contracts/names.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { formatTable, getClusterCustomObjectTable } from '../../shared/kube/table.js';
import { SAMPLE_CR_FILE } from './paths.js';
import { LOCAL_REGION, LOCAL_REGISTRY, startLocalStack, waitForRelay } from './stack.js';

const say = (msg: string) => console.log(`[tcr-assistant] ${msg}`);
const exitWhenDone = process.env.TCR_LOCAL_EXIT_AFTER_READY === '1';
const { values: args } = parseArgs({
  options: {
    runtime: { type: 'string', default: 'worker' },
    'no-node': { type: 'boolean', default: false },
    // Redis Cluster (3 primaries, 3 replicas on loopback) instead of one redis-server: REDIS_URL redis+cluster://.
    'redis-cluster': { type: 'boolean', default: false },
  },
});
if (args.runtime !== 'worker' && args.runtime !== 'scf') {
  console.error(`--runtime must be worker or scf, not "${args.runtime}"`);
  process.exit(2);
}
const runtime = args.runtime;
const started = Date.now();
const stack = await startLocalStack({
  clusterId: 'local',
  runtime,
  node: !args['no-node'],
  redisCluster: args['redis-cluster'],
});
const abort = new AbortController();
let stopping = false;
const shutdown = async (reason: string, code = 0) => {
  if (stopping) return;
  stopping = true;
  say(`${reason}: stopping relay, workers, node, control plane and Redis`);
  abort.abort();
  await stack.stop();
  process.exit(code);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  const { admin, cluster, redis } = stack;
  say(
    `control plane ${cluster.server}, Redis ${redis.url} (v${redis.version}) up in ${Date.now() - started} ms`,
  );
  say(`kubeconfig: ${cluster.kubeconfigPath}   relay log: ${stack.relayLog}`);
  if (stack.node) {
    say(
      `node ${stack.node.info.name} Ready in ${stack.node.startMs} ms (kubelet + containerd, loopback only); registry https://${stack.registry?.host} (TLS, tokens from the emulator)`,
    );
  } else if (stack.nodeUnavailable) {
    say(`no node: this machine cannot host one (${stack.nodeUnavailable}); the pull demo is skipped`);
  }
  // The CLI against this demo (audit, fleet, tokens, rotate) needs its environment, the emulator's key
  // included: in a file only we can read, not on the terminal.
  const cliEnv = path.join(cluster.dir, 'cli.env');
  const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    cliEnv,
    `${Object.entries({
      KUBECONFIG: cluster.kubeconfigPath,
      REDIS_URL: redis.url,
      CLUSTER_ID: stack.clusterId,
      QUEUE_PREFIX: stack.functions.env.QUEUE_PREFIX,
      TENCENTCLOUD_ENDPOINT: stack.emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
      TENCENTCLOUD_SECRET_ID: stack.apiKey.secretId,
      TENCENTCLOUD_SECRET_KEY: stack.apiKey.secretKey,
    })
      .map(([k, v]) => `export ${k}=${quote(v)}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  say(`for the CLI: source ${cliEnv}   (then: npm run functions -- audit --limit 5 | fleet | tokens)`);
  await waitForRelay(stack);
  say(
    runtime === 'scf'
      ? `relay ready (http://127.0.0.1:${stack.relayPort}/metrics); functions on the emulator's SCF as ${stack.scf?.functionName}, woken by the relay (logs: ${stack.cluster.dir}/scf-default.${stack.scf?.functionName}.log)`
      : `relay ready (http://127.0.0.1:${stack.relayPort}/metrics); workers running`,
  );

  // Show every processed job as it happens.
  void (async () => {
    for await (const e of followAudit(stack.functions.redis, stack.functions.auditKey, {}, abort.signal)) {
      const acts = e.actions.filter((a) => a.verb !== 'noop').map((a) => `${a.verb} ${a.object}`);
      say(
        `job ${e.key} (${e.trigger}) ${e.outcome} in ${e.durationMs} ms${acts.length ? `: ${acts.join('; ')}` : ''}`,
      );
    }
  })();

  const [sample] = await readManifests(SAMPLE_CR_FILE);
  await applyManifests(admin, [sample!]);
  const crName = sample?.metadata?.name ?? 'imagepullsecret-sample';
  say(`applied ImagePullSecret ${crName} (namespaces "*", serviceAccounts "*")`);

  // A second CR whose credential tcr-assistant issues itself (spec.tcr), from the local Tencent emulator.
  const issuedCr = 'tcr-issued';
  const issuedManifest = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ImagePullSecret',
    metadata: { name: issuedCr },
    spec: {
      namespaces: 'demo-1,demo-2',
      docker: { server: stack.registry?.host ?? `${LOCAL_REGISTRY}.tencentcloudcr.com` },
      tcr: { registryId: LOCAL_REGISTRY, region: LOCAL_REGION, tokenType: 'longterm' },
    },
  };
  await applyManifests(admin, [issuedManifest]);
  say(
    `applied ImagePullSecret ${issuedCr} (spec.tcr: a token for ${LOCAL_REGISTRY}, issued by the functions)`,
  );

  const core = admin.makeApiClient(CoreV1Api);
  const demo = ['demo-1', 'demo-2', 'newns'];
  await new Promise((r) => setTimeout(r, 1500));
  for (const name of demo) await core.createNamespace({ body: { metadata: { name } } });
  say(`created namespaces ${demo.join(', ')}`);
  await new Promise((r) => setTimeout(r, 1000));
  await core.createNamespacedServiceAccount({ namespace: 'newns', body: { metadata: { name: 'kung' } } });
  say('created ServiceAccount newns/kung');

  const secret = secretNameFor(crName);
  let last = '';
  let convergedAt: number | undefined;
  while (!stopping) {
    const table = formatTable(await getClusterCustomObjectTable(admin, GROUP, VERSION, PLURAL));
    if (table !== last) {
      console.log(`\n$ kubectl get ipss\n${table}\n`);
      last = table;
    }
    const kung = await core
      .readNamespacedServiceAccount({ namespace: 'newns', name: 'kung' })
      .catch(() => undefined);
    const namespaces = (await core.listNamespace()).items.length;
    const issued = await core
      .readNamespacedSecret({ namespace: 'demo-2', name: secretNameFor(issuedCr) })
      .catch(() => undefined);
    const ok = /\s(\d+)\s+(\d+)\s*$/.exec(table.split('\n')[1] ?? '');
    if (
      !convergedAt &&
      issued &&
      kung?.imagePullSecrets?.some((r) => r.name === secret) &&
      ok &&
      ok[1] === String(namespaces) &&
      ok[2] === ok[1]
    ) {
      convergedAt = Date.now();
      say(
        `converged: ${namespaces} namespaces carry ${secret}; newns/kung lists it; demo-1 and demo-2 carry ${secretNameFor(issuedCr)} (CreateInstanceToken calls: ${stack.emulator.calls('CreateInstanceToken')})${runtime === 'scf' ? ` (SCF invocations: ${describeInvocations(stack)})` : ''} (${convergedAt - started} ms after start)`,
      );
      if (stack.demoImage) await demoDeployment(stack.demoImage, secretNameFor(issuedCr));
      if (exitWhenDone) break;
      say(
        `Ctrl-C to stop. Try: KUBECONFIG=${cluster.kubeconfigPath} kubectl create ns another  (the relay picks it up)`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await shutdown('done');
} catch (error) {
  // Stopping makes the demo's own requests fail (the API server goes first): that is no failure to report.
  if (!stopping) {
    console.error(`[tcr-assistant] failed: ${error instanceof Error ? error.message : String(error)}`);
    await shutdown('error', 1);
  }
}

/** `N (M by the relay, T by timers, C cold starts)` from the emulator's SCF records. */
function describeInvocations(s: typeof stack): string {
  const records = s.emulator.scf.invocations();
  const by = (type: string) => records.filter((r) => r.type === type).length;
  return `${records.length} (${by('Event')} woken by the relay, ${by('Timer')} by timers, ${records.filter((r) => r.cold).length} cold starts)`;
}

/**
 * A Deployment in demo-1 whose YAML names no imagePullSecrets, pulling (Always) the demo image from the local
 * TLS registry: its pod gets demo-1/default's entry at admission, and containerd pulls with the token the
 * functions issued. Created once demo-1/default carries the entry (a pod admitted earlier would never get it).
 */
async function demoDeployment(image: string, pullSecret: string): Promise<void> {
  const core = stack.admin.makeApiClient(CoreV1Api);
  const apps = stack.admin.makeApiClient(AppsV1Api);
  const t0 = Date.now();
  for (;;) {
    const sa = await core.readNamespacedServiceAccount({ namespace: 'demo-1', name: 'default' });
    if (sa.imagePullSecrets?.some((r) => r.name === pullSecret)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const api = new URL(stack.cluster.server);
  await apps.createNamespacedDeployment({
    namespace: 'demo-1',
    body: {
      metadata: { name: 'hello' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'hello' } },
        template: {
          metadata: { labels: { app: 'hello' } },
          spec: {
            hostNetwork: true, // the only network here; in-cluster clients get the API server's loopback address
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'hello',
                image,
                imagePullPolicy: 'Always',
                args: ['-sleep', 'hello from a pod that named no pull Secret'],
                env: [
                  { name: 'KUBERNETES_SERVICE_HOST', value: api.hostname },
                  { name: 'KUBERNETES_SERVICE_PORT', value: api.port },
                ],
              },
            ],
          },
        },
      },
    },
  });
  say(
    `created Deployment demo-1/hello (image ${image}, no imagePullSecrets in its YAML, imagePullPolicy Always)`,
  );
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace: 'demo-1', labelSelector: 'app=hello' });
    const pod = pods.items.find((p) => p.status?.containerStatuses?.[0]?.state?.running);
    const waiting = pods.items[0]?.status?.containerStatuses?.[0]?.state?.waiting;
    if (waiting?.reason === 'ErrImagePull' || waiting?.reason === 'ImagePullBackOff') {
      throw new Error(`the demo pod cannot pull: ${waiting.reason}: ${waiting.message ?? ''}`);
    }
    if (pod) {
      const log = (
        await core.readNamespacedPodLog({ namespace: 'demo-1', name: pod.metadata?.name ?? '' })
      ).trim();
      say(
        `Deployment demo-1/hello Running on node ${pod.spec?.nodeName}: pod ${pod.metadata?.name} pulled ${image} with ${pullSecret} (a token tcr-assistant issued), ${Date.now() - t0} ms; its log: "${log}"`,
      );
      return;
    }
    if (Date.now() - t0 > 120_000) throw new Error('the demo Deployment did not run within 120 s');
    await new Promise((r) => setTimeout(r, 250));
  }
}
