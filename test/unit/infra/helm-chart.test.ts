import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { RBAC_DIR } from '../../../infra/local/paths.js';
import { ENTRY_POINTS } from '../../../infra/scripts/build-bundles.mjs';
import { QUEUE_NAME } from '../../../shared/contracts/jobs.js';
import {
  byKind,
  CHART_DIR,
  containersOf,
  helm,
  type Manifest,
  REQUIRED_VALUES,
  renderChart,
  setArgs,
} from '../../support/chart.js';

// The chart as helm sees it: lint, render with default and with every option, refuse bad values by name,
// and grant exactly the RBAC the e2e tests run our code with (infra/rbac).

type Values = Record<string, string | number | boolean>;
const EVERYTHING: Values = {
  ...REQUIRED_VALUES,
  'hostsUpdater.enabled': true,
  'metrics.serviceMonitor.enabled': true,
  'metrics.prometheusRule.enabled': true,
  'networkPolicy.enabled': true,
  'fleet.file': 'name: prod',
  'fleet.kubeconfigSecret': 'fleet-kubeconfigs',
  'tencentCloud.existingSecret': 'tcr-api-key',
  'adoption.addonSecrets': true,
};

describe('helm lint and template', () => {
  it('lints clean (strict) with the required values', async () => {
    const result = await helm([
      'lint',
      CHART_DIR,
      '--strict',
      '--namespace',
      'tcr-assistant-system',
      ...setArgs(EVERYTHING),
    ]);
    expect(result.stderr + result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  it('renders the defaults: relay ×2 with anti-affinity and PDB, worker ×2 with probes, no optional extras', async () => {
    const objects = await renderChart();
    const kinds = objects.map((o) => o.kind).sort();
    expect(new Set(kinds)).toEqual(
      new Set([
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'MutatingWebhookConfiguration',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Secret',
        'Service',
        'ServiceAccount',
      ]),
    );
    const relay = byKind(objects, 'Deployment').find((d) => d.metadata.name === 'tcr-assistant-relay');
    expect(relay?.spec.replicas).toBe(2);
    expect(relay?.spec.template.spec.affinity.podAntiAffinity).toBeDefined();
    expect(
      byKind(objects, 'PodDisruptionBudget')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['tcr-assistant-relay', 'tcr-assistant-webhook', 'tcr-assistant-worker']);
    // The Redis URL given as a value lives in a Secret, not in a pod spec.
    expect(JSON.stringify(byKind(objects, 'Deployment'))).not.toContain('redis://');
  });

  it('renders every option: DaemonSet, ServiceMonitor, PrometheusRule with the four alerts, NetworkPolicies, KEDA', async () => {
    const objects = await renderChart(EVERYTHING);
    expect(byKind(objects, 'DaemonSet')).toHaveLength(1);
    expect(byKind(objects, 'ServiceMonitor')).toHaveLength(1);
    expect(byKind(objects, 'NetworkPolicy')).toHaveLength(3);
    const alerts = byKind(objects, 'PrometheusRule')[0]?.spec.groups[0].rules.map((r: Manifest) => r.alert);
    expect(alerts).toEqual([
      'TcrAssistantRelayNotLeading',
      'TcrAssistantJobsFailing',
      'TcrAssistantOldestJobWaiting',
      'TcrAssistantTokenExpiresSoon',
      'TcrAssistantWebhookCertificateExpiresSoon',
    ]);
    const keda = await renderChart({
      ...REQUIRED_VALUES,
      'worker.keda.enabled': true,
      'worker.keda.address': 'redis:6379',
    });
    const scaled = byKind(keda, 'ScaledObject')[0];
    // The wait list BullMQ really uses: <prefix>:<queue>:wait.
    expect(scaled?.spec.triggers[0].metadata.listName).toBe(`{tcr}:${QUEUE_NAME}:wait`);
    expect(
      byKind(keda, 'Deployment').find((d) => d.metadata.name === 'tcr-assistant-worker')?.spec.replicas,
    ).toBeUndefined();
  });

  it('every container: non-root or the documented root exception, read-only root, no privilege escalation, probes, resources, a bundle of the image', async () => {
    const objects = await renderChart(EVERYTHING);
    const bundles = Object.keys(ENTRY_POINTS).map((name) => `/app/${name}.cjs`);
    for (const { workload, pod, container } of containersOf(objects)) {
      const what = `${workload.kind} ${workload.metadata.name}`;
      expect(container.securityContext.readOnlyRootFilesystem, what).toBe(true);
      expect(container.securityContext.allowPrivilegeEscalation, what).toBe(false);
      expect(container.securityContext.capabilities.drop, what).toEqual(['ALL']);
      expect(container.resources.limits.memory, what).toBeDefined();
      expect(container.command[0], what).toBe('node');
      // node's own flags (the relay's nodeFlags), then the bundle.
      const bundleAt = (container.command as string[]).findIndex((a, i) => i > 0 && !a.startsWith('--'));
      expect(bundles, what).toContain(container.command[bundleAt]);
      if (workload.kind === 'DaemonSet') {
        expect(pod.securityContext.runAsUser, what).toBe(0);
      } else {
        expect(pod.securityContext.runAsNonRoot, what).toBe(true);
        expect(container.readinessProbe.httpGet.path, what).toBe('/readyz');
        expect(container.livenessProbe.httpGet.path, what).toBe('/healthz');
      }
    }
  });

  it("the relay: node's flags NODE_OPTIONS refuses (nodeFlags) on its command line before the bundle, heap settings in NODE_OPTIONS", async () => {
    const objects = await renderChart(EVERYTHING);
    const relay = containersOf(objects).find(
      (c) => c.workload.metadata.labels['app.kubernetes.io/component'] === 'relay',
    );
    expect(relay?.container.command).toEqual(['node', '--jitless', '--no-expose-wasm', '/app/relay.cjs']);
    expect(relay?.container.env.find((e: Manifest) => e.name === 'NODE_OPTIONS')?.value).toBe(
      '--max-semi-space-size=1 --max-old-space-size=64 --v8-pool-size=1',
    );
  });

  it("the worker: glibc's malloc tunables from mallocEnv in its environment", async () => {
    const workerEnv = async (values: Values) => {
      const worker = containersOf(await renderChart(values)).find(
        (c) => c.workload.metadata.labels['app.kubernetes.io/component'] === 'worker',
      );
      return Object.fromEntries(
        ((worker?.container.env ?? []) as Manifest[])
          .filter((e) => String(e.name).startsWith('MALLOC_'))
          .map((e) => [e.name, e.value]),
      );
    };
    expect(await workerEnv(EVERYTHING)).toEqual({
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
    // helm deletes a key set to null: glibc's default for that one.
    const defaults = {
      ...EVERYTHING,
      'worker.mallocEnv.MALLOC_ARENA_MAX': null,
      'worker.mallocEnv.MALLOC_MMAP_THRESHOLD_': null,
    } as unknown as Values;
    expect(await workerEnv(defaults)).toEqual({ MALLOC_TRIM_THRESHOLD_: '131072' });
  });

  it('hostNetwork: one Deployment per replica, each on its own port, with the API server address from values', async () => {
    const objects = await renderChart({
      ...REQUIRED_VALUES,
      hostNetwork: true,
      'kubernetesApi.host': '127.0.0.1',
      'kubernetesApi.port': '6443',
    });
    const ports = containersOf(objects).map(({ workload, pod, container }) => {
      expect(pod.hostNetwork).toBe(true);
      // A surge pod could never schedule: it needs the port the old pod holds.
      expect(workload.spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
      const env = Object.fromEntries(
        container.env.filter((e: Manifest) => 'value' in e).map((e: Manifest) => [e.name, e.value]),
      );
      expect(env.KUBERNETES_SERVICE_HOST).toBe('127.0.0.1');
      return `${workload.metadata.name}:${container.ports[0].containerPort}`;
    });
    expect(ports.sort()).toEqual([
      'tcr-assistant-relay-0:8080',
      'tcr-assistant-relay-1:8081',
      'tcr-assistant-webhook-0:8443',
      'tcr-assistant-webhook-1:8444',
      'tcr-assistant-worker-0:9464',
      'tcr-assistant-worker-1:9465',
    ]);
  });
});

describe('the admission webhook', () => {
  it('by default: its own CA in a Secret of the release, the caBundle injected by it, failing open fast', async () => {
    const objects = await renderChart();
    const config = byKind(objects, 'MutatingWebhookConfiguration')[0];
    const hook = config?.webhooks[0];
    expect(hook.clientConfig.service).toEqual({
      namespace: 'tcr-assistant-system',
      name: 'tcr-assistant-webhook',
      port: 443,
      path: '/mutate-serviceaccounts',
    });
    expect(hook.clientConfig.caBundle).toBeUndefined();
    expect([hook.failurePolicy, hook.sideEffects, hook.timeoutSeconds, hook.reinvocationPolicy]).toEqual([
      'Ignore',
      'None',
      2,
      'IfNeeded',
    ]);
    expect(hook.namespaceSelector.matchExpressions[0].values).toEqual([
      'kube-system',
      'kube-public',
      'kube-node-lease',
      'tcr-assistant-system',
    ]);
    const secret = byKind(objects, 'Secret').find((o) => o.metadata.name === 'tcr-assistant-webhook-tls');
    expect(secret?.data).toBeUndefined();
    const env = Object.fromEntries(
      containersOf(objects)
        .find(({ workload }) => workload.metadata.name === 'tcr-assistant-webhook')
        ?.container.env.map((e: Manifest) => [e.name, e.value]) ?? [],
    );
    expect(env).toMatchObject({
      WEBHOOK_SECRET: 'tcr-assistant-webhook-tls',
      WEBHOOK_CONFIGURATION: config?.metadata.name,
      WEBHOOK_DNS_NAMES: 'tcr-assistant-webhook.tcr-assistant-system.svc',
    });
  });

  it('with cert-manager: a Certificate mounted into the webhook, cainjector fills the caBundle, no Secret or configuration access', async () => {
    const own = await renderChart({ ...REQUIRED_VALUES, 'webhook.certificate.certManager.enabled': true });
    expect(byKind(own, 'Certificate').map((c) => c.metadata.name)).toEqual([
      'tcr-assistant-webhook-ca',
      'tcr-assistant-webhook',
    ]);
    expect(byKind(own, 'Issuer')).toHaveLength(2);
    expect(byKind(own, 'MutatingWebhookConfiguration')[0]?.metadata.annotations).toEqual({
      'cert-manager.io/inject-ca-from': 'tcr-assistant-system/tcr-assistant-webhook',
    });
    const webhook = containersOf(own).find(
      ({ workload }) => workload.metadata.name === 'tcr-assistant-webhook',
    );
    expect(webhook?.container.env).toContainEqual({ name: 'WEBHOOK_TLS_DIR', value: '/tls' });
    expect(webhook?.pod.volumes).toEqual([
      { name: 'tls', secret: { secretName: 'tcr-assistant-webhook-tls' } },
    ]);
    const rules = [...byKind(own, 'ClusterRole'), ...byKind(own, 'Role')]
      .filter((r) => r.metadata.name.startsWith('tcr-assistant-webhook'))
      .flatMap((r) => r.rules.flatMap((rule: Manifest) => rule.resources));
    expect(rules.sort()).toEqual(['imagepullsecrets', 'namespaces']);
    expect(byKind(own, 'Secret').some((s) => s.metadata.name === 'tcr-assistant-webhook-tls')).toBe(false);

    const theirs = await renderChart({
      ...REQUIRED_VALUES,
      'webhook.certificate.certManager.enabled': true,
      'webhook.certificate.certManager.issuerRef.name': 'corp-ca',
      'webhook.certificate.certManager.issuerRef.kind': 'ClusterIssuer',
    });
    expect(byKind(theirs, 'Issuer')).toEqual([]);
    expect(byKind(theirs, 'Certificate').map((c) => c.spec.issuerRef)).toEqual([
      { name: 'corp-ca', kind: 'ClusterIssuer' },
    ]);
  });

  it('off: no webhook objects at all', async () => {
    const objects = await renderChart({ ...REQUIRED_VALUES, 'webhook.enabled': false });
    expect(objects.filter((o) => JSON.stringify(o.metadata.labels ?? {}).includes('"webhook"'))).toEqual([]);
    expect(byKind(objects, 'MutatingWebhookConfiguration')).toEqual([]);
  });
});

describe('bad values are refused, naming the value', () => {
  it.each([
    {
      title: 'a string where a number goes',
      values: { 'relay.replicas': 'two' },
      message: "at '/relay/replicas': got string, want integer",
    },
    {
      title: 'an unknown key (a typo)',
      values: { 'relay.replica': 3 },
      message: "additional properties 'replica' not allowed",
    },
    {
      title: 'a Redis URL without the scheme',
      values: { 'redis.url': 'redis.example:6379' },
      message: "at '/redis/url'",
    },
    { title: 'a bad cluster id', values: { clusterId: 'prod gz' }, message: "at '/clusterId'" },
    { title: 'an unknown log level', values: { logLevel: 'verbose' }, message: "at '/logLevel'" },
    { title: 'no cluster id', values: { clusterId: '' }, message: 'clusterId: required' },
    {
      title: 'both Redis sources',
      values: { 'redis.existingSecret.name': 'r' },
      message: 'set redis.url or redis.existingSecret.name, not both',
    },
    {
      title: 'an issuer kind cert-manager does not have',
      values: { 'webhook.certificate.certManager.issuerRef.kind': 'CertificateAuthority' },
      message: "at '/webhook/certificate/certManager/issuerRef/kind'",
    },
    {
      title: 'a webhook timeout beyond what the API server allows',
      values: { 'webhook.timeoutSeconds': 60 },
      message: "at '/webhook/timeoutSeconds'",
    },
    {
      title: 'a malloc tunable that is not one',
      values: { 'worker.mallocEnv.MALLOC_ARENAS': '2' },
      message: "additional properties 'MALLOC_ARENAS' not allowed",
    },
    {
      title: 'KEDA without an address',
      values: { 'worker.keda.enabled': true },
      message: 'worker.keda.address: required',
    },
  ] as { title: string; values: Values; message: string }[])('$title', async ({ values, message }) => {
    await expect(renderChart({ ...REQUIRED_VALUES, ...values })).rejects.toThrow(message);
  });

  it('another namespace', async () => {
    await expect(renderChart(REQUIRED_VALUES, { namespace: 'default' })).rejects.toThrow(
      'namespace: install into tcr-assistant-system',
    );
  });
});

describe('RBAC: the chart grants what infra/rbac grants (the rules every e2e test runs our code with)', () => {
  const rulesOf = (objects: Manifest[]) =>
    Object.fromEntries(
      objects
        .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
        .map((o) => [`${o.kind}/${o.metadata.name}`, o.rules]),
    );
  const files = (names: string[]) =>
    names.flatMap((n) =>
      parseAllDocuments(readFileSync(path.join(RBAC_DIR, n), 'utf8'))
        .map((d) => d.toJSON() as Manifest)
        .filter(Boolean),
    );

  it('same roles, same rules, same subjects', async () => {
    const chart = await renderChart({ ...REQUIRED_VALUES, 'hostsUpdater.enabled': true });
    const shipped = files([
      'relay.yaml',
      'functions.yaml',
      'functions-system.yaml',
      'hosts-updater.yaml',
      'webhook.yaml',
    ]);
    expect(rulesOf(chart)).toEqual(rulesOf(shipped));
    const bindings = (objects: Manifest[]) =>
      objects
        .filter((o) => o.kind.endsWith('Binding'))
        .map(
          (o) =>
            `${o.kind}/${o.metadata.name} → ${o.roleRef.name} ← ${o.subjects.map((s: Manifest) => `${s.namespace}/${s.name}`).join(',')}`,
        )
        .sort();
    expect(bindings(chart)).toEqual(bindings(shipped));
  });
});

describe('the CRD the chart installs', () => {
  it('is the one the tests apply (infra/crd links to the chart)', () => {
    expect(readFileSync(path.join(CHART_DIR, 'crds', 'imagepullsecrets.yaml'), 'utf8')).toBe(
      readFileSync(path.join(RBAC_DIR, '..', 'crd', 'imagepullsecrets.yaml'), 'utf8'),
    );
  });
});
