import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ServiceAccount,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { FUNCTIONS_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import {
  installWebhook,
  startWebhookProcess,
  uninstallWebhookConfiguration,
  WEBHOOK_CONFIGURATION,
  type WebhookEndpoint,
  type WebhookProcess,
} from '../../infra/local/webhook.js';
import { FIELD_MANAGER, SKIP_ANNOTATION } from '../../shared/contracts/labels.js';
import { secretNameFor } from '../../shared/contracts/names.js';
import { createCr, deleteCr, docker, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import {
  adminKubeConfig,
  createNamespace,
  impersonatingKubeConfig,
  serviceAccountUser,
  uniqueName,
} from '../support/kube.js';
import { apiserverMetrics } from '../support/metrics.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { waitFor } from '../support/wait.js';

// The admission webhook as its own process and ServiceAccount, installed from infra/ (RBAC, Secret, Service,
// MutatingWebhookConfiguration), called by the real API server through the Service (loopback ClusterIP) and
// verified by it against the CA the webhook injected.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const logDir = mkdtempSync(path.join(os.tmpdir(), 'tcr-webhook-e2e-'));
const PASSWORD = `pw-${uniqueName('secret')}`;
let endpoint: WebhookEndpoint;
let webhook: WebhookProcess | undefined;
const crs: string[] = [];

async function startWebhook(env: Record<string, string> = {}, name = 'webhook'): Promise<WebhookProcess> {
  const w = await startWebhookProcess({
    kubeconfig: inject('webhookKubeconfigPath'),
    endpoint,
    logFile: path.join(logDir, `${name}.log`),
    env,
  });
  await w.waitReady();
  return w;
}

/** A CR that selects namespaces by a label of its own, so each test sees only its namespaces. */
async function scopedCr(
  spec: Record<string, unknown> = {},
): Promise<{ cr: string; label: Record<string, string> }> {
  const cr = uniqueName('wh');
  const label = { 'webhook-test': cr };
  crs.push(cr);
  await createCr(kc, cr, {
    namespaces: '*',
    serviceAccounts: '*',
    namespaceSelector: { matchLabels: label },
    docker: docker(PASSWORD),
    ...spec,
  });
  return { cr, label };
}

const entriesOf = (sa: { imagePullSecrets?: { name?: string }[] } | undefined) =>
  (sa?.imagePullSecrets ?? []).map((r) => r.name);

/** A dry-run create goes through admission and stores nothing: the webhook's answer, as the API server applied it. */
async function dryRunEntries(namespace: string, name = 'probe', annotations?: Record<string, string>) {
  const sa = await core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name, annotations } },
    dryRun: 'All',
  });
  return entriesOf(sa);
}

/** Waits until the webhook's view knows the CR (a dry run in a selected namespace gets its entry). */
async function waitUntilViewHas(cr: string, namespace: string): Promise<void> {
  await waitFor(`the webhook to know CR ${cr}`, async () =>
    (await dryRunEntries(namespace)).includes(secretNameFor(cr)),
  );
}

beforeAll(async () => {
  endpoint = await installWebhook(kc);
  webhook = await startWebhook();
});

afterAll(async () => {
  await webhook?.stop();
  await uninstallWebhookConfiguration(kc);
  for (const cr of crs) await deleteCr(kc, cr).catch(() => {});
  rmSync(logDir, { recursive: true, force: true });
});

describe('admission webhook', () => {
  it('a ServiceAccount in a selected namespace is born with our entry (default and created ones)', async () => {
    const { cr, label } = await scopedCr();
    const probe = uniqueName('wh-probe');
    await createNamespace(kc, probe, label);
    await waitUntilViewHas(cr, probe);

    const ns = uniqueName('wh-born');
    // Watch before the namespace exists: the first version of `default` the API server ever stored.
    const first = new Promise<V1ServiceAccount>((resolve, reject) => {
      let controller: AbortController | undefined;
      new Watch(kc)
        .watch(
          '/api/v1/serviceaccounts',
          { fieldSelector: `metadata.namespace=${ns}` },
          (type, obj: V1ServiceAccount) => {
            if (type === 'ADDED' && obj.metadata?.name === 'default') {
              controller?.abort();
              resolve(obj);
            }
          },
          (err) => err && !(err instanceof Error && err.name === 'AbortError') && reject(err),
        )
        .then((c) => {
          controller = c;
        }, reject);
    });
    await new Promise((r) => setTimeout(r, 200));
    await createNamespace(kc, ns, label);
    const born = await first;
    expect(entriesOf(born)).toEqual([secretNameFor(cr)]);

    const created = await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'builder' }, imagePullSecrets: [{ name: 'theirs' }] },
    });
    expect(entriesOf(created)).toEqual(['theirs', secretNameFor(cr)]);
    expect(await webhook?.metric('tcr_webhook_admissions_total', { outcome: 'patched' })).toBeGreaterThan(0);
    // The API server's TLS connections are counted (the benchmark reads them per stream).
    expect(await webhook?.metric('tcr_webhook_connections_total')).toBeGreaterThanOrEqual(1);
    // The CR's password passed through the webhook's watch: it never reaches its log.
    expect(readFileSync(path.join(logDir, 'webhook.log'), 'utf8')).not.toContain(PASSWORD);
  });

  it('skipped and unselected namespaces, skipped ServiceAccounts and system namespaces are admitted unchanged', async () => {
    const { cr, label } = await scopedCr();
    const selected = uniqueName('wh-sel');
    await createNamespace(kc, selected, label);
    await waitUntilViewHas(cr, selected);

    const skipped = uniqueName('wh-skip');
    await createNamespace(kc, skipped, label, { [SKIP_ANNOTATION]: 'true' });
    const unselected = uniqueName('wh-unsel');
    await createNamespace(kc, unselected, { 'webhook-test': 'someone-else' });
    for (const ns of [skipped, unselected]) {
      const sa = await core.createNamespacedServiceAccount({
        namespace: ns,
        body: { metadata: { name: 'builder' } },
      });
      expect(entriesOf(sa), ns).toEqual([]);
    }
    expect(await dryRunEntries(selected, 'opted-out', { [SKIP_ANNOTATION]: 'true' })).toEqual([]);

    // A CR that names kube-system: the configuration's namespaceSelector keeps the API server from calling
    // us there at all (the job path still serves it).
    const system = uniqueName('wh-sys');
    crs.push(system);
    await createCr(kc, system, { namespaces: `kube-system,${selected}`, docker: docker() });
    await waitUntilViewHas(system, selected);
    // Counted as a patched CREATE, the one answer a call for kube-system would get (the CR names it). The
    // total would also count other files' writes anywhere in the shared cluster and our own functions'
    // updates in `selected`, which may land between the two reads.
    const patchedCreates = { operation: 'CREATE', outcome: 'patched' };
    // Patched CREATEs this test does not make: the serviceaccount controller's `default` in this file's
    // selected namespaces (`selected`, the previous test's probe), made whenever the controller gets to them
    // (seconds, loaded). One landing between the two reads would count as a call for kube-system.
    await waitFor('a default ServiceAccount in each namespace of this file', async () => {
      const ours = (await core.listNamespace({ labelSelector: 'webhook-test' })).items;
      const sas = await Promise.all(
        ours.map((n) =>
          core.readNamespacedServiceAccount({ namespace: n.metadata?.name ?? '', name: 'default' }).then(
            () => '',
            () => n.metadata?.name ?? '',
          ),
        ),
      );
      const missing = sas.filter(Boolean);
      if (missing.length > 0) throw new Error(`no default ServiceAccount yet in ${missing.join(', ')}`);
      return true;
    });
    const calls = await webhook?.metric('tcr_webhook_admissions_total', patchedCreates);
    expect(await dryRunEntries('kube-system')).toEqual([]);
    expect(await webhook?.metric('tcr_webhook_admissions_total', patchedCreates)).toBe(calls);
  });

  it('an update that drops our entry gets it back; a removal by our own functions stays', async () => {
    const { cr, label } = await scopedCr();
    const ns = uniqueName('wh-upd');
    await createNamespace(kc, ns, label);
    await waitUntilViewHas(cr, ns);
    const ours = secretNameFor(cr);
    const sa = await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'app' } },
    });
    expect(entriesOf(sa)).toEqual([ours]);

    // A PUT of a manifest that never heard of our entry (what a naive GitOps sync does).
    const replaced = await core.replaceNamespacedServiceAccount({
      namespace: ns,
      name: 'app',
      body: { metadata: { name: 'app', labels: { synced: 'yes' } }, imagePullSecrets: [{ name: 'theirs' }] },
    });
    expect(entriesOf(replaced)).toEqual(['theirs', ours]);
    expect(replaced.metadata?.labels?.synced).toBe('yes');

    // Our functions remove entries on purpose (CR narrowed): the webhook must not fight them.
    const ownWritesBefore =
      (await webhook?.metric('tcr_webhook_admissions_total', {
        operation: 'UPDATE',
        outcome: 'own-write',
      })) ?? 0;
    const functions = impersonatingKubeConfig(
      serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT),
    );
    const removed = await functions.makeApiClient(CoreV1Api).patchNamespacedServiceAccount(
      {
        namespace: ns,
        name: 'app',
        body: {
          metadata: { resourceVersion: replaced.metadata?.resourceVersion },
          imagePullSecrets: [{ name: 'theirs' }],
        },
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(entriesOf(removed)).toEqual(['theirs']);
    // Counted from before the patch: the webhook process counts since it started, and any earlier removal by
    // our functions (a worker of another test) would count too.
    expect(
      await webhook?.metric('tcr_webhook_admissions_total', { operation: 'UPDATE', outcome: 'own-write' }),
    ).toBe(ownWritesBefore + 1);
  });

  it('a caBundle reset (an apply or helm upgrade of the configuration) is re-injected as its watch event arrives', async () => {
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const read = () => admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
    const before = await read();
    const injected = before.webhooks?.map((w) => w.clientConfig.caBundle) ?? [];
    expect(injected.length).toBeGreaterThan(0);
    expect(injected.every(Boolean)).toBe(true);
    const injectionsBefore = await webhook?.metric('tcr_webhook_cabundle_injections_total');
    await admission.patchMutatingWebhookConfiguration(
      {
        name: WEBHOOK_CONFIGURATION,
        body: { webhooks: before.webhooks?.map((w) => ({ name: w.name, clientConfig: { caBundle: '' } })) },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const resetAt = Date.now();
    // The periodic check runs every 10 minutes (CERT_CHECK_MS default): only the watch can be this quick.
    await waitFor(
      'the caBundle back',
      async () => {
        const now = (await read()).webhooks?.map((w) => w.clientConfig.caBundle) ?? [];
        return JSON.stringify(now) === JSON.stringify(injected);
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    console.log(`[webhook] caBundle re-injected ${Date.now() - resetAt} ms after the reset`);
    expect(Date.now() - resetAt).toBeLessThan(30_000);
    expect(await webhook?.metric('tcr_webhook_cabundle_injections_total')).toBe((injectionsBefore ?? 0) + 1);
  });

  it('killed during a burst: every namespace and pod is still admitted, and the job path converges', async () => {
    const fx: FunctionsHarness = await startFunctions({
      WORKER_CONCURRENCY: '16',
      STATUS_DELAY_MS: '500',
      LOG_LEVEL: 'warn',
    });
    let relay: RelayProcess | undefined;
    try {
      relay = await startRelayProcess({
        KUBECONFIG: inject('relayKubeconfigPath'),
        REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: fx.prefix,
        CLUSTER_ID: CLUSTER,
        LEASE_DURATION_MS: '3000',
        LEASE_RETRY_MS: '300',
      });
      await relay.waitReady(60_000);
      const { cr, label } = await scopedCr();
      const probe = uniqueName('wh-probe');
      await createNamespace(kc, probe, label);
      await waitUntilViewHas(cr, probe);
      const ours = secretNameFor(cr);

      const N = 150;
      const KILL_AT = 50;
      const names = Array.from({ length: N }, (_, i) => uniqueName(`wh-burst-${i}`));
      const defaults = new Map<string, (sa: V1ServiceAccount) => void>();
      const bornWith = new Map<string, boolean>();
      const bornAt = new Map<string, number>();
      let controller: AbortController | undefined;
      await new Watch(kc)
        .watch(
          '/api/v1/serviceaccounts',
          {},
          (type, obj: V1ServiceAccount) => {
            const ns = obj.metadata?.namespace ?? '';
            if (type === 'ADDED' && obj.metadata?.name === 'default' && defaults.has(ns)) {
              bornWith.set(ns, entriesOf(obj).includes(ours));
              bornAt.set(ns, Date.now());
              defaults.get(ns)?.(obj);
            }
          },
          () => {},
        )
        .then((c) => {
          controller = c;
        });
      const podHadEntry = new Map<string, boolean>();
      const errors: string[] = [];
      let started = 0;
      let killed: Promise<void> | undefined;
      let killedAt = Number.POSITIVE_INFINITY;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (started < N) {
            const i = started++;
            const ns = names[i] as string;
            if (i === KILL_AT) {
              killedAt = Date.now();
              killed = webhook?.kill9();
            }
            const defaultSeen = new Promise<V1ServiceAccount>((resolve) => defaults.set(ns, resolve));
            try {
              await createNamespace(kc, ns, label);
              await defaultSeen;
              // As soon as `default` exists, as a controller would.
              const pod = await core.createNamespacedPod({
                namespace: ns,
                body: {
                  metadata: { name: 'app' },
                  // Held back from scheduling: only admission matters here (the pull race is measured on the
                  // node in webhook-node.e2e.test.ts).
                  spec: {
                    schedulingGates: [{ name: 'tcr.tencentcloudcr.com/admission-only' }],
                    containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
                  },
                },
              });
              podHadEntry.set(
                ns,
                (pod.spec?.imagePullSecrets ?? []).some((r) => r.name === ours),
              );
            } catch (error) {
              errors.push(`${ns}: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        }),
      );
      controller?.abort();
      await killed;
      webhook = undefined;
      expect(errors).toEqual([]);
      expect(podHadEntry.size).toBe(N);
      // Every `default` the API server stored before the kill was born with the entry, and so was every pod
      // of such a namespace (the ServiceAccount admission plugin copied it).
      const before = names.filter((n) => (bornAt.get(n) ?? Number.POSITIVE_INFINITY) < killedAt);
      expect(before.length).toBeGreaterThanOrEqual(KILL_AT - 16);
      expect(before.filter((n) => !bornWith.get(n))).toEqual([]);
      expect(names.filter((n) => bornWith.get(n) && !podHadEntry.get(n))).toEqual([]);
      const after = names.filter((n) => !before.includes(n));
      const afterBorn = after.filter((n) => bornWith.get(n)).length;
      console.log(
        `[webhook e2e] born with the entry: ${before.length}/${before.length} before the kill, ${afterBorn}/${after.length} after; pods with it: ${[...podHadEntry.values()].filter(Boolean).length}/${N}`,
      );
      // After the kill the API server admitted without us (failurePolicy Ignore): most lack it at first.
      expect(afterBorn).toBeLessThan(after.length);

      // Everything converges through the job path: every `default` carries the entry, every Secret exists.
      await waitFor(
        `${N + 1} namespaces converged for ${cr}`,
        async () => {
          const s = (await readCr(kc, cr)).status;
          return s?.secretsDesired === N + 1 && s.secretsSuccess === N + 1;
        },
        { timeoutMs: 240_000, intervalMs: 500 },
      );
      const missing: string[] = [];
      for (const ns of names) {
        const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'default' });
        if (!entriesOf(sa).includes(ours)) missing.push(ns);
      }
      expect(missing).toEqual([]);

      // The job path found the entry already there: no ServiceAccount patch where admission had added it,
      // one per namespace where it had not.
      await fx.drain();
      const patches = new Map<string, number>();
      for (const e of await listAudit(fx.rt.redis, `${fx.prefix}:audit`, { cluster: CLUSTER }, 1_000_000))
        for (const a of e.actions)
          if (a.verb === 'patched' && a.object === `ServiceAccount ${e.namespace}/default`)
            patches.set(e.namespace ?? '', (patches.get(e.namespace ?? '') ?? 0) + 1);
      expect(before.filter((n) => patches.has(n))).toEqual([]);
      expect(names.filter((n) => !bornWith.get(n) && patches.get(n) !== 1)).toEqual([]);

      // Back up: admission adds the entry again, with the certificate it kept in its Secret.
      webhook = await startWebhook({}, 'webhook-restarted');
      const again = uniqueName('wh-again');
      await createNamespace(kc, again, label);
      expect(await dryRunEntries(again)).toEqual([ours]);
    } finally {
      // SIGTERM: the relay releases its Lease, so the next file's relay leads at once.
      await relay?.kill('SIGTERM');
      await fx.close();
    }
    // Relay start (60 s), the burst, convergence (240 s) and the drain add up past the 120 s default: the wait
    // that gives up must say what it waited for.
  }, 480_000);

  it('rotates its CA and serving certificate before expiry without one call failing open', async () => {
    await webhook?.stop();
    // Start from an empty Secret, as installed, with lifetimes of seconds.
    const secret = await core.readNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      name: 'tcr-assistant-webhook-tls',
    });
    await core.replaceNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      name: 'tcr-assistant-webhook-tls',
      body: { ...secret, data: {} },
    });
    webhook = await startWebhook(
      {
        // Renewed 6 s into a 20 s life: 14 s of slack for a loaded machine.
        CERT_VALIDITY_SECONDS: '20',
        CERT_RENEW_BEFORE_SECONDS: '14',
        CA_VALIDITY_SECONDS: '40',
        CA_RENEW_BEFORE_SECONDS: '24',
        CA_PROPAGATION_SECONDS: '2',
        CERT_BACKDATE_SECONDS: '0',
        CERT_CHECK_MS: '500',
      },
      'webhook-rotating',
    );
    const { cr, label } = await scopedCr();
    const ns = uniqueName('wh-rot');
    await createNamespace(kc, ns, label);
    await waitUntilViewHas(cr, ns);
    const ours = secretNameFor(cr);

    const failOpen = async () => {
      const line = (await apiserverMetrics(kc))
        .split('\n')
        .find(
          (l) =>
            l.startsWith('apiserver_admission_webhook_fail_open_count{') && l.includes('serviceaccounts.tcr'),
        );
      return Number(line?.split(' ').pop() ?? 0);
    };
    const failOpenBefore = await failOpen();
    const seenBundles = new Set<number>();
    const servingIds = new Set<string>();
    let calls = 0;
    const failed: number[] = [];
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const t = Date.now();
      if (!(await dryRunEntries(ns)).includes(ours)) failed.push(t);
      calls++;
      const data =
        (await core.readNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name: 'tcr-assistant-webhook-tls' }))
          .data ?? {};
      const bundle = Buffer.from(data['ca.crt'] ?? '', 'base64').toString();
      seenBundles.add((bundle.match(/BEGIN CERTIFICATE/g) ?? []).length);
      servingIds.add(data['tls.crt'] ?? '');
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(
      `[webhook e2e] rotation: ${calls} admissions over 30 s, ${servingIds.size} serving certificates, bundle sizes ${[...seenBundles].join('/')}, failed ${failed.length}`,
    );
    expect(failed).toEqual([]);
    expect(servingIds.size).toBeGreaterThanOrEqual(4);
    // A CA rotation happened: for a while the bundle held the old and the new CA.
    expect(seenBundles.has(2)).toBe(true);
    expect(await webhook?.metric('tcr_webhook_cabundle_injections_total')).toBeGreaterThanOrEqual(2);
    // The API server's own count of calls it could not make and admitted without us: none.
    expect(await failOpen()).toBe(failOpenBefore);
  });
});
