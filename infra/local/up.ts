// `npm start`: the local embedded default, the whole pipeline. A real control plane and Redis on loopback,
// the relay (as its ServiceAccount) and the functions as BullMQ workers (as theirs), the seed's sample CR,
// then a few namespaces and a ServiceAccount `kung` created, with convergence shown as it happens (the audit
// stream, `kubectl get ipss`). Runs until Ctrl-C, which stops everything and removes the temp folders.
// TCR_LOCAL_EXIT_AFTER_READY=1 exits (0) once the demo has converged: the quick-start test uses it.
// `--runtime scf` runs the functions as Tencent SCF runs them instead (the bundle on the emulator's SCF, woken
// by the relay's asynchronous Invoke, with serverless.yml's timers as the safety net).
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { followAudit } from '../../functions/adapters/audit-reader.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { formatTable, getClusterCustomObjectTable } from '../../shared/kube/table.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/names.js';
import { SAMPLE_CR_FILE } from './paths.js';
import { LOCAL_REGION, LOCAL_REGISTRY, startLocalStack, waitForRelay } from './stack.js';

const say = (msg: string) => console.log(`[tcr-assistant] ${msg}`);
const exitWhenDone = process.env.TCR_LOCAL_EXIT_AFTER_READY === '1';
const { values: args } = parseArgs({ options: { runtime: { type: 'string', default: 'worker' } } });
if (args.runtime !== 'worker' && args.runtime !== 'scf') {
  console.error(`--runtime must be worker or scf, not "${args.runtime}"`);
  process.exit(2);
}
const runtime = args.runtime;
const started = Date.now();
const stack = await startLocalStack({ clusterId: 'local', runtime });
const abort = new AbortController();
let stopping = false;
const shutdown = async (reason: string, code = 0) => {
  if (stopping) return;
  stopping = true;
  say(`${reason}: stopping relay, workers, control plane and Redis`);
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
      docker: { server: `${LOCAL_REGISTRY}.tencentcloudcr.com` },
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
  for (;;) {
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
      if (exitWhenDone) break;
      say('Ctrl-C to stop. Try: KUBECONFIG=... kubectl create ns another  (the relay picks it up)');
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await shutdown('done');
} catch (error) {
  console.error(`[tcr-assistant] failed: ${error instanceof Error ? error.stack : String(error)}`);
  await shutdown('error', 1);
}

/** `N (M by the relay, T by timers, C cold starts)` from the emulator's SCF records. */
function describeInvocations(s: typeof stack): string {
  const records = s.emulator.scf.invocations();
  const by = (type: string) => records.filter((r) => r.type === type).length;
  return `${records.length} (${by('Event')} woken by the relay, ${by('Timer')} by timers, ${records.filter((r) => r.cold).length} cold starts)`;
}
