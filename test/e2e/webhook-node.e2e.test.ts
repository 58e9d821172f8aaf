import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, type V1Pod, type V1ServiceAccount, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TencentTcrApi } from '../../functions/adapters/tencent-tcr.js';
import { writeHelloImage } from '../../infra/local/images.js';
import {
  createTokenSigner,
  type LocalRegistry,
  pushImage,
  startRegistry,
} from '../../infra/local/registry.js';
import {
  installWebhook,
  startWebhookProcess,
  uninstallWebhookConfiguration,
  type WebhookProcess,
} from '../../infra/local/webhook.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { secretNameFor } from '../../shared/contracts/names.js';
import { createCr, deleteCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, uniqueName } from '../support/kube.js';
import { podState, requireNode, runNode } from '../support/node.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { waitFor } from '../support/wait.js';

// The race the webhook closes, on the real node: "create a namespace, then a pod with a private image as soon
// as its `default` ServiceAccount exists" (what `helm install --create-namespace` and GitOps tools do), with
// the whole pipeline running (relay, functions, webhook). A pod admitted before `default` carries our entry
// never gets it (pod imagePullSecrets are immutable): it is stuck in ImagePullBackOff for good. With the
// webhook `default` is born with the entry, and a pod whose Secret is not there yet at its first pull
// recovers at the kubelet's next back-off. Trials per phase: WEBHOOK_RACE_TRIALS (default 100).

const TRIALS = Number(process.env.WEBHOOK_RACE_TRIALS ?? 100);
/** At most one trial per this many ms: the trials measure the race, not how many pods a node starts at once. */
const TRIAL_EVERY_MS = Number(process.env.WEBHOOK_RACE_EVERY_MS ?? 500);
const STUCK_AFTER_MS = 30_000;
/** How long a pod that is not stuck may take to succeed at all (a loaded node is slow to start pods). */
const GIVE_UP_MS = 180_000;
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const REGION = 'ap-guangzhou';
const REGISTRY = 'tcr-race0001';
const SECRET_ID = 'AKIDRACEE2E00000000000000000000000';
const SECRET_KEY = 'race-e2e-secret-key';
const node = runNode();
const namespaces: string[] = [];
let dir = '';
let emulator: TencentEmulator | undefined;
let registry: LocalRegistry | undefined;
let fx: FunctionsHarness | undefined;
let relay: RelayProcess | undefined;
let webhook: WebhookProcess | undefined;
let image = '';
let cr = '';
const label = { 'race-test': uniqueName('race') };

beforeAll(async () => {
  if (!node) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-race-e2e-'));
  const signer = await createTokenSigner(dir);
  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [{ registryId: REGISTRY, region: REGION }],
    registryTokenService: {
      registryId: REGISTRY,
      service: 'tcr-race-registry',
      issuer: 'tcr-emulator',
      keyPem: signer.keyPem,
      certDerBase64: signer.certDerBase64,
    },
  });
  registry = await startRegistry({
    realm: `${emulator.url}/service/token`,
    service: 'tcr-race-registry',
    issuer: 'tcr-emulator',
    signer,
    tls: { pki: inject('caFiles') },
  });
  await node.trustRegistry(registry.host, registry.caFile ?? '');
  const api = new TencentTcrApi({ endpoint: emulator.endpoint, protocol: 'http://', timeoutSeconds: 5 });
  const issue = (tokenType: 'temp' | 'longterm') =>
    api.createInstanceToken({
      registryId: REGISTRY,
      region: REGION,
      credential: { secretId: SECRET_ID, secretKey: SECRET_KEY },
      tokenType,
      desc: 'race e2e',
    });
  const built = await writeHelloImage(path.join(dir, 'image'), `${registry.host}/race/hello:v1`);
  image = await pushImage(built, registry, 'race/hello:v1', await issue('temp'));
  const puller = await issue('longterm');
  // The CR distributes a fixed credential (an instance token) to the test's namespaces only.
  cr = uniqueName('race');
  await createCr(kc, cr, {
    namespaces: '*',
    serviceAccounts: '*',
    namespaceSelector: { matchLabels: label },
    docker: { server: registry.host, username: puller.username, password: puller.token },
  });
  fx = await startFunctions({ WORKER_CONCURRENCY: '16', STATUS_DELAY_MS: '1000', LOG_LEVEL: 'warn' });
  relay = await startRelayProcess({
    KUBECONFIG: inject('relayKubeconfigPath'),
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: fx.prefix,
    CLUSTER_ID: CLUSTER,
    LEASE_DURATION_MS: '3000',
    LEASE_RETRY_MS: '300',
  });
  await relay.waitReady(60_000);
  // Ready includes standing by (a Lease another file's relay held): wait until it leads.
  const leading = relay;
  await waitFor('the relay to lead', async () => (await leading.metric('tcr_relay_leader')) === 1, {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  // The relay's start-up resync covers every CR of the shared cluster, including ones earlier test files
  // are still cleaning up: let that work finish, so the trials measure the job path at rest.
  await fx.drain(600_000);
}, 900_000);

afterAll(async () => {
  await webhook?.stop();
  await uninstallWebhookConfiguration(kc);
  // SIGTERM: the relay releases its Lease, so the next file's relay leads at once.
  await relay?.kill('SIGTERM');
  await fx?.close();
  // Namespaces go first (their pods stop), then what served their pulls.
  await Promise.all(namespaces.map((name) => core.deleteNamespace({ name }).catch(() => {})));
  if (cr) await deleteCr(kc, cr).catch(() => {});
  await registry?.stop();
  await emulator?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

interface Trial {
  ns: string;
  /** The pod was admitted with our entry (copied from `default` by the ServiceAccount admission plugin). */
  admittedWithEntry: boolean;
  createdAt: number;
  /** The pod's state 30 s after it was created. */
  state?: string;
  /** ms from creation to Succeeded (undefined: not within GIVE_UP_MS). */
  succeededAfterMs?: number;
  /** The kubelet's first pull failed (Secret not there yet, or not yet readable by the kubelet). */
  retried?: boolean;
  /** For pods not Succeeded at 30 s: why (events), and when the Secret appeared relative to the pod. */
  detail?: string;
}

/** Runs the trials, then reads each pod 30 s after it was created. */
async function runTrials(phase: string): Promise<Trial[]> {
  const ours = secretNameFor(cr);
  const waiting = new Map<string, () => void>();
  let controller: AbortController | undefined;
  await new Watch(kc)
    .watch(
      '/api/v1/serviceaccounts',
      {},
      (type, obj: V1ServiceAccount) => {
        if (type === 'ADDED' && obj.metadata?.name === 'default')
          waiting.get(obj.metadata.namespace ?? '')?.();
      },
      () => {},
    )
    .then((c) => {
      controller = c;
    });
  const trials: Trial[] = [];
  // Every 500 ms while trials run and after: each pod's state once 30 s old, and when it succeeded.
  const byNs = new Map<string, Trial>();
  let creating = true;
  const watchStates = (async () => {
    for (;;) {
      const now = Date.now();
      const pods = await core.listPodForAllNamespaces({ labelSelector: `race-phase=${phase}` });
      for (const pod of pods.items) {
        const t = byNs.get(pod.metadata?.namespace ?? '');
        if (!t) continue;
        const state = podState(pod);
        if (t.state === undefined && now - t.createdAt >= STUCK_AFTER_MS) t.state = state;
        if (state === 'Succeeded' && t.succeededAfterMs === undefined) t.succeededAfterMs = now - t.createdAt;
      }
      // A pod admitted without the entry cannot recover (its imagePullSecrets are immutable): its state at
      // 30 s is all there is to see. One admitted with it is followed until it succeeds.
      const open = trials.filter(
        (t) =>
          t.state === undefined ||
          (t.admittedWithEntry && t.succeededAfterMs === undefined && now - t.createdAt < GIVE_UP_MS),
      );
      if (!creating && open.length === 0) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  // One after the other, as a CI pipeline or a GitOps sync would: namespace, then at once its pod.
  for (let i = 0; i < TRIALS; i++) {
    const due = Date.now() + TRIAL_EVERY_MS;
    const ns = uniqueName(`race-${phase}-${i}`);
    namespaces.push(ns);
    const exists = new Promise<void>((resolve) => waiting.set(ns, resolve));
    await core.createNamespace({ body: { metadata: { name: ns, labels: label } } });
    await exists;
    const pod: V1Pod = await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'app', labels: { 'race-phase': phase } },
        spec: {
          hostNetwork: true,
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          automountServiceAccountToken: false,
          containers: [{ name: 'main', image, imagePullPolicy: 'Always', args: ['pulled'] }],
        },
      },
    });
    const trial: Trial = {
      ns,
      admittedWithEntry: (pod.spec?.imagePullSecrets ?? []).some((r) => r.name === ours),
      createdAt: Date.now(),
    };
    trials.push(trial);
    byNs.set(ns, trial);
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
  creating = false;
  controller?.abort();
  await watchStates;
  for (const t of trials) {
    const events = await core.listNamespacedEvent({
      namespace: t.ns,
      fieldSelector: 'involvedObject.name=app',
    });
    t.retried = events.items.some((e) => e.reason === 'BackOff');
  }
  for (const t of trials.filter((x) => x.succeededAfterMs === undefined)) {
    const secret = await core.readNamespacedSecret({ namespace: t.ns, name: ours }).catch(() => undefined);
    const secretAfterMs = secret?.metadata?.creationTimestamp
      ? new Date(secret.metadata.creationTimestamp).getTime() - t.createdAt
      : undefined;
    const events = (
      await core.listNamespacedEvent({ namespace: t.ns, fieldSelector: 'involvedObject.name=app' })
    ).items.map((e) => `${e.reason}×${e.count ?? 1}: ${(e.message ?? '').slice(0, 160)}`);
    t.detail = `secret +${secretAfterMs ?? '?'} ms; ${events.join(' | ')}`;
  }
  return trials;
}

const STUCK = ['ImagePullBackOff', 'ErrImagePull'];
function summary(trials: Trial[]) {
  const states: Record<string, number> = {};
  const done = trials
    .map((t) => t.succeededAfterMs)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
  for (const t of trials) states[t.state ?? '?'] = (states[t.state ?? '?'] ?? 0) + 1;
  return {
    notSucceeded: trials
      .filter((t) => t.detail)
      .slice(0, 5)
      .map((t) => `${t.ns} ${t.state}: ${t.detail}`),
    trials: trials.length,
    admittedWithEntry: trials.filter((t) => t.admittedWithEntry).length,
    stuck: trials.filter((t) => STUCK.includes(t.state ?? '')).length,
    /** Stuck at 30 s among the pods admitted without the entry (those can never pull). */
    stuckWithoutEntry: trials.filter((t) => !t.admittedWithEntry && STUCK.includes(t.state ?? '')).length,
    statesAt30s: states,
    succeeded: done.length,
    succeededP50Ms: done[Math.floor(done.length / 2)],
    succeededMaxMs: done[done.length - 1],
    retriedByKubelet: trials.filter((t) => t.retried).length,
  };
}

describe('the admission race on the real node', () => {
  it(`${TRIALS} × "namespace, then a pod as soon as default exists": every pod runs with the webhook; without it, every pod admitted early is stuck`, {
    timeout: 900_000,
  }, async (ctx) => {
    requireNode(ctx);
    // With the webhook (installed from infra/, as its ServiceAccount).
    const endpoint = await installWebhook(kc);
    webhook = await startWebhookProcess({
      kubeconfig: inject('webhookKubeconfigPath'),
      endpoint,
      logFile: path.join(dir, 'webhook.log'),
    });
    await webhook.waitReady();
    const load = () => os.loadavg()[0]?.toFixed(1);
    console.log(`[race e2e] load average ${load()} at start`);
    const withWebhook = summary(await runTrials('wh'));
    console.log(`[race e2e] load average ${load()} after the webhook phase`);
    const show = ({ notSucceeded, ...numbers }: ReturnType<typeof summary>) =>
      `${JSON.stringify(numbers)}\n  e.g. ${notSucceeded.slice(0, 2).join('\n  e.g. ').slice(0, 1200)}`;
    console.log(`[race e2e] with the webhook: ${show(withWebhook)}`);
    // Why a first pull went without credentials, in the kubelet's words (Secret not there yet, or not yet
    // readable by the kubelet: its per-Secret cache waits 1 s to sync).
    const kubeletLog = await readFile(node?.info.logs.kubelet ?? '', 'utf8').catch(() => '');
    const reasons = kubeletLog
      .split('\n')
      .filter((l) => l.includes('Unable to retrieve pull secret'))
      .map((l) =>
        (l.includes('err="') ? l.slice(l.indexOf('err="') + 5, l.lastIndexOf('"')) : l.slice(-160))
          .replaceAll('\\"', '"')
          .replace(/tcr\.ips[\w.-]+/g, 'tcr.ips…'),
      );
    const counted: Record<string, number> = {};
    for (const r of reasons) counted[r] = (counted[r] ?? 0) + 1;
    console.log(`[race e2e] kubelet pull-secret retrievals that failed: ${JSON.stringify(counted)}`);

    // Baseline: the same, with the webhook's configuration removed (the job path alone).
    await uninstallWebhookConfiguration(kc);
    await webhook.stop();
    webhook = undefined;
    const baseline = summary(await runTrials('base'));
    console.log(`[race e2e] load average ${load()} after the baseline`);
    console.log(`[race e2e] without the webhook: ${show(baseline)}`);

    // The timed figure (stuck at 30 s) depends on how loaded the machine is, so it is reported, not asserted
    // (performance targets live in the benchmark); what cannot depend on load is asserted:
    // with the webhook every pod is admitted with the entry and runs; without it, every pod admitted before
    // the job patched `default` fails to pull, and only those admitted after it run.
    expect(withWebhook.admittedWithEntry).toBe(TRIALS);
    expect(withWebhook.succeeded).toBe(TRIALS);
    // Counted among the pods admitted without the entry: one admitted with it may also be in back-off at
    // 30 s (its first pulls failed while the kubelet's Secret cache lagged: 10 s, then 20 s of back-off) and
    // still succeed later, as the second assertion requires.
    expect(baseline.stuckWithoutEntry).toBe(TRIALS - baseline.admittedWithEntry);
    expect(baseline.succeeded).toBe(baseline.admittedWithEntry);
  });
});
