// `npx tsx bench/pod-webhook-probe.ts [N] [PODS]`: should the webhook also mutate pods? (docs/adr-009)
// Measures the two sides of that decision on the local pipeline:
// 1. the window a pod-level mutation would close: a CR created over N namespaces that already exist → every
//    `default` ServiceAccount carries the entry (a pod created in between, in a namespace not reached yet,
//    is admitted without it);
// 2. what a webhook call costs every pod creation: PODS pod creates without a pod webhook, with one (our own
//    server, which answers a Pod review "allowed, unchanged" as fast as a real decision would), and with that
//    webhook hung (SIGSTOP): the case every pod in the cluster would pay up to timeoutSeconds for.

import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { startLocalStack, waitForRelay } from '../infra/local/stack.js';
import { secretNameFor } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import { parseHistogram, shareAtMost } from './admission.js';
import { percentile, runPool, ServiceAccountObserver, waitQueueIdle } from './observe.js';

const n = Number(process.argv[2] ?? 1000);
const pods = Number(process.argv[3] ?? 300);
const log = (m: string) => console.log(`[probe ${new Date().toISOString().slice(11, 19)}] ${m}`);
const stack = await startLocalStack({ clusterId: 'probe', statusDelayMs: 5000 });
try {
  const core = shareConnections(stack.admin).makeApiClient(CoreV1Api);
  const admission = stack.admin.makeApiClient(AdmissionregistrationV1Api);
  await waitForRelay(stack);

  // --- 1. the window ---
  const names = Array.from({ length: n }, (_, i) => `window-${i}`);
  const set = new Set(names);
  const secret = secretNameFor('late');
  const obs = new ServiceAccountObserver(
    stack.admin,
    () => [secret],
    (ns) => set.has(ns),
  );
  await obs.start();
  await runPool(names, 16, (name) =>
    core.createNamespace({ body: { metadata: { name, labels: { window: 'yes' } } } }).then(() => undefined),
  );
  while (obs.appeared.size < n) await new Promise((r) => setTimeout(r, 200));
  await waitQueueIdle(stack.functions.queue, 300);
  const t0 = performance.now();
  await createImagePullSecret(stack.admin, 'late', {
    namespaces: '*',
    namespaceSelector: { matchLabels: { window: 'yes' } },
    docker: { server: 'probe.tencentcloudcr.com', username: 'probe', password: 'v1' },
  });
  while (obs.carrying.size < n) await new Promise((r) => setTimeout(r, 50));
  const reached = names.map((ns) => (obs.carrying.get(ns) as number) - t0).sort((a, b) => a - b);
  obs.stop();
  log(
    `window: a CR created over ${n} existing namespaces → their default ServiceAccounts carry the entry after p50 ${percentile(reached, 50).toFixed(0)} ms, p99 ${percentile(reached, 99).toFixed(0)} ms, last ${reached.at(-1)?.toFixed(0)} ms`,
  );
  await waitQueueIdle(stack.functions.queue, 300);

  // --- 2. the cost per pod ---
  await core.createNamespace({ body: { metadata: { name: 'pods' } } });
  while (
    !(await core.readNamespacedServiceAccount({ namespace: 'pods', name: 'default' }).catch(() => undefined))
  )
    await new Promise((r) => setTimeout(r, 100));
  let round = 0;
  const createPods = async (count: number, what: string) => {
    round++;
    const latencies: number[] = [];
    await runPool(
      Array.from({ length: count }, (_, i) => `p${round}-${i}`),
      16,
      async (name) => {
        const started = performance.now();
        await core.createNamespacedPod({
          namespace: 'pods',
          body: {
            metadata: { name },
            // Never scheduled: admission is what is measured.
            spec: {
              schedulingGates: [{ name: 'probe/hold' }],
              containers: [{ name: 'main', image: 'probe.invalid/app:1' }],
            },
          },
        });
        latencies.push(performance.now() - started);
      },
    );
    log(
      `${what}: ${count} pod creates at concurrency 16: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
    );
    return latencies;
  };
  const config = await admission.readMutatingWebhookConfiguration({ name: 'tcr-assistant' });
  const template = config.webhooks?.[0];
  if (!template) throw new Error('the webhook configuration has no webhook');
  const podWebhook = {
    metadata: { name: 'tcr-assistant-pods-probe' },
    webhooks: [
      {
        ...template,
        name: 'pods.probe.tcr.tencentcloudcr.com',
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        matchConditions: [],
      },
    ],
  };
  await createPods(50, 'warm-up');
  // Rounds alternate (without, with, without, with, ...) so that a machine whose load drifts affects both.
  const rounds = { without: [] as number[], with: [] as number[] };
  for (let round = 0; round < 3; round++) {
    rounds.without.push(...(await createPods(pods, `round ${round + 1}: no pod webhook`)));
    await admission.createMutatingWebhookConfiguration({ body: podWebhook });
    await new Promise((r) => setTimeout(r, 2000));
    rounds.with.push(...(await createPods(pods, `round ${round + 1}: with a pod webhook`)));
    await admission.deleteMutatingWebhookConfiguration({ name: 'tcr-assistant-pods-probe' });
    await new Promise((r) => setTimeout(r, 2000));
  }
  for (const [what, values] of Object.entries(rounds))
    log(
      `all rounds ${what}: ${values.length} creates, p50 ${percentile(values, 50).toFixed(1)} ms, p90 ${percentile(values, 90).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms`,
    );
  const calls = parseHistogram(
    (await stack.cluster.get('/metrics')).body,
    'apiserver_admission_webhook_admission_duration_seconds',
    { name: 'pods.probe.tcr.tencentcloudcr.com' },
  );
  log(
    `the pod webhook as the API server timed it: ${calls.count} calls, mean ${((calls.sum / Math.max(1, calls.count)) * 1000).toFixed(2)} ms, ${((shareAtMost(calls, 0.005) || 0) * 100).toFixed(1)} % ≤ 5 ms`,
  );
  await admission.createMutatingWebhookConfiguration({ body: podWebhook });
  await new Promise((r) => setTimeout(r, 2000));
  const pid = stack.webhook?.process.child.pid;
  if (pid !== undefined) {
    process.kill(-pid, 'SIGSTOP');
    await createPods(32, 'with the pod webhook hung (SIGSTOP)');
    process.kill(-pid, 'SIGCONT');
  }
  await admission.deleteMutatingWebhookConfiguration({ name: 'tcr-assistant-pods-probe' });
} finally {
  await stack.stop();
}
