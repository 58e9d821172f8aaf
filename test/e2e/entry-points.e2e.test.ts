import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubernetesObject,
  loadYaml,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { findFreePort } from '../../infra/local/free-port.js';
import { REPO_ROOT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import type { ManagedProcess } from '../../infra/local/processes.js';
import { UPDATER_CONFIG_MAP_NAME } from '../../shared/contracts/updater-config.js';
import { applyManifests } from '../../shared/kube/manifests.js';
import { CHART_NAMESPACE, containersOf, type Manifest, renderChart } from '../support/chart.js';
import { containerPid, projectImage, runInImage, unpackImage } from '../support/image.js';
import { adminKubeConfig } from '../support/kube.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);

// Every entry point as shipped: the image built by the project's script, each container started with the
// exact command and environment the chart renders (Secrets and the downward API resolved as the kubelet
// would, its own ServiceAccount's token at the in-cluster path, the image's root read-only, as the image's
// user, PID 1 of its own namespace), then stopped with SIGTERM. And the SCF package booted with exactly
// serverless.yml's environment. A missing dependency in a bundle or a variable the config refuses fails here.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const api = new URL(inject('apiServer'));
const suffix = randomBytes(3).toString('hex');
let dir: string;
let rendered: Manifest[];
let image: { root: string; env: string[]; user: string };
const running: ManagedProcess[] = [];
let savedConfigMap: Manifest | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-entry-points-'));
  const built = await projectImage();
  image = await unpackImage(built.tarball, path.join(dir, 'image'));
  await writeFile(path.join(dir, 'hosts'), '127.0.0.1\tlocalhost\n');
  rendered = await renderChart({
    clusterId: `boot-${suffix}`,
    'redis.url': inject('redisUrl'),
    'redis.queuePrefix': `{boot${suffix}}`,
    hostNetwork: true,
    'kubernetesApi.host': api.hostname,
    'kubernetesApi.port': api.port,
    'relay.replicas': 1,
    'worker.replicas': 1,
    'relay.httpPort': await findFreePort(),
    'worker.metricsPort': await findFreePort(),
    'webhook.replicas': 1,
    'webhook.port': await findFreePort(),
    'webhook.httpPort': await findFreePort(),
    'hostsUpdater.enabled': true,
    'hostsUpdater.hostsPath': path.join(dir, 'hosts'),
    'hostsUpdater.stateDir': path.join(dir, 'hosts-state'),
    'tencentCloud.existingSecret': 'tcr-api-key',
    'adoption.addonSecrets': true,
  });
  // The hosts-updater's input (restored afterwards: the private-network test owns this ConfigMap).
  savedConfigMap = await core
    .readNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
    .catch(() => undefined);
  const data = {
    enabled: 'true',
    hosts: JSON.stringify([{ domain: `boot-${suffix}.example.com`, ip: '127.0.0.9' }]),
  };
  // Without our managed-by label: the functions (the worker booted here schedules a private-endpoints
  // refresh) never rewrite a ConfigMap they did not make.
  await core
    .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
    .catch(() => {});
  await core.createNamespacedConfigMap({
    namespace: SYSTEM_NAMESPACE,
    body: { metadata: { name: UPDATER_CONFIG_MAP_NAME }, data },
  });
}, 300_000);

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL', 1000);
  await core
    .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
    .catch(() => {});
  if (savedConfigMap) {
    const { resourceVersion: _rv, uid: _uid, ...metadata } = savedConfigMap.metadata;
    await core.createNamespacedConfigMap({
      namespace: SYSTEM_NAMESPACE,
      body: { ...savedConfigMap, metadata },
    });
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Secret values the chart's secretKeyRefs point at: rendered Secrets, and the API key Secret a user makes. */
function secretValue(name: string, key: string): string {
  const own = rendered.find((o) => o.kind === 'Secret' && o.metadata.name === name);
  if (own) return own.stringData[key];
  if (name === 'tcr-api-key')
    return key === 'SecretId' ? 'AKIDBOOT00000000000000000000000000' : 'boot-secret-key';
  throw new Error(`the chart references Secret ${name} (key ${key}), which the test does not provide`);
}

/** The container's environment as the kubelet builds it (plus the image's own Env). */
function containerEnv(workload: Manifest, container: Manifest): Record<string, string> {
  const env: Record<string, string> = Object.fromEntries(
    image.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  for (const e of container.env as Manifest[]) {
    if ('value' in e) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef)
      env[e.name] = secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.fieldRef) {
      const field = e.valueFrom.fieldRef.fieldPath;
      env[e.name] =
        field === 'metadata.name'
          ? `${workload.metadata.name}-boot-${suffix}`
          : field === 'metadata.namespace'
            ? CHART_NAMESPACE
            : field === 'spec.nodeName'
              ? '127.0.0.1'
              : '';
    } else throw new Error(`unsupported env source for ${e.name}`);
  }
  return env;
}

/** The pod's ServiceAccount token (TokenRequest, as the kubelet's projected volume), CA and namespace. */
async function tokenDir(serviceAccount: string): Promise<string> {
  const out = path.join(dir, `token-${serviceAccount}`);
  await mkdir(out, { recursive: true });
  const request = await core.createNamespacedServiceAccountToken({
    namespace: CHART_NAMESPACE,
    name: serviceAccount,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  await writeFile(path.join(out, 'token'), request.status?.token ?? '');
  await writeFile(path.join(out, 'ca.crt'), readFileSync(inject('caFiles').caCert));
  await writeFile(path.join(out, 'namespace'), CHART_NAMESPACE);
  return out;
}

async function boot(component: string): Promise<{ proc: ManagedProcess; env: Record<string, string> }> {
  const entry = containersOf(rendered).find(
    (c) => c.workload.metadata.labels['app.kubernetes.io/component'] === component,
  );
  if (!entry) throw new Error(`the chart renders no ${component}`);
  const { workload, pod, container } = entry;
  const env = containerEnv(workload, container);
  const binds = (container.volumeMounts ?? []).map((m: Manifest) => {
    const volume = (pod.volumes as Manifest[]).find((v) => v.name === m.name);
    if (!volume?.hostPath) throw new Error(`volume ${m.name}: only hostPath volumes are supported here`);
    return { from: volume.hostPath.path, to: m.mountPath };
  });
  for (const b of binds) if (b.from.endsWith('-state')) await mkdir(b.from, { recursive: true });
  const uid = pod.securityContext.runAsUser ?? image.user.split(':')[0];
  const gid = pod.securityContext.runAsGroup ?? image.user.split(':')[1];
  const proc = await runInImage({
    name: `${component} (image)`,
    root: image.root,
    command: container.command,
    env,
    user: `${uid}:${gid}`,
    tokenDir: await tokenDir(pod.serviceAccountName),
    binds,
    logFile: path.join(dir, `${component}.log`),
  });
  running.push(proc);
  return { proc, env };
}

async function httpStatus(port: string, urlPath: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`).catch(() => undefined);
  return res?.status ?? 0;
}

/** SIGTERM to the container's PID 1, as the kubelet stops it: a clean exit 0 within the grace period. */
async function stopLikeKubelet(
  proc: ManagedProcess,
  graceMs: number,
): Promise<{ code: number | null; ms: number }> {
  const pid = containerPid(proc);
  expect(pid, `${proc.name} runs`).toBeDefined();
  const started = Date.now();
  process.kill(pid as number, 'SIGTERM');
  const code = await Promise.race([
    proc.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs)),
  ]);
  expect(code, `${proc.name} exit after SIGTERM; log:\n${proc.tail()}`).toBe(0);
  return { code: code as number, ms: Date.now() - started };
}

describe('the image, started as the chart starts it', () => {
  it('relay: Ready with its own ServiceAccount token (in-cluster config, API server and Redis on loopback), leads, stops cleanly on SIGTERM', async () => {
    const { proc, env } = await boot('relay');
    expect(env.KUBERNETES_SERVICE_HOST).toBe(api.hostname);
    await waitFor(
      'the relay to be ready',
      async () => ((await httpStatus(env.HTTP_PORT as string, '/readyz')) === 200 ? true : undefined),
      { timeoutMs: 45_000, intervalMs: 250 },
    ).catch((error) => {
      throw new Error(`${error.message}\n${proc.tail()}`);
    });
    // It takes the Lease (with its own token's RBAC) and its watches sync: still ready, now as the leader.
    await waitFor(
      'the relay to lead',
      async () => {
        const metrics = await (await fetch(`http://127.0.0.1:${env.HTTP_PORT}/metrics`)).text();
        return /^tcr_relay_leader 1$/m.test(metrics) &&
          (await httpStatus(env.HTTP_PORT as string, '/readyz')) === 200
          ? true
          : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    ).catch((error) => {
      throw new Error(`${error.message}\n${proc.tail()}`);
    });
    expect(proc.tail(200)).not.toMatch(/Warning|warning:|Error:/);
    await stopLikeKubelet(proc, 10_000);
  });

  it('worker: Ready (Redis up, workers running), serves its metrics, stops cleanly on SIGTERM', async () => {
    const { proc, env } = await boot('worker');
    expect(env.ADOPT_ADDON_SECRETS).toBe('true');
    await waitFor(
      'the worker to be ready',
      async () => ((await httpStatus(env.METRICS_PORT as string, '/readyz')) === 200 ? true : undefined),
      { timeoutMs: 45_000, intervalMs: 250 },
    ).catch((error) => {
      throw new Error(`${error.message}\n${proc.tail()}`);
    });
    const metrics = await (await fetch(`http://127.0.0.1:${env.METRICS_PORT}/metrics`)).text();
    expect(metrics).toMatch(/^tcr_queue_waiting_jobs \d+$/m);
    expect(metrics).toMatch(/^tcr_queue_oldest_waiting_seconds [\d.]+$/m);
    await stopLikeKubelet(proc, 20_000);
  });

  it('webhook: Ready with its own token, fills its certificate Secret, injects the caBundle, answers TLS for its Service name, stops cleanly', async () => {
    // What the chart ships beside it: the empty Secret and the configuration whose caBundle it keeps. The
    // configuration lives only while this test runs (its Service is not this process).
    const shipped = rendered.filter(
      (o) =>
        (o.kind === 'Secret' && o.metadata.name === 'tcr-assistant-webhook-tls') ||
        o.kind === 'MutatingWebhookConfiguration',
    );
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    await core
      .deleteNamespacedSecret({ namespace: CHART_NAMESPACE, name: 'tcr-assistant-webhook-tls' })
      .catch(() => {});
    await admission.deleteMutatingWebhookConfiguration({ name: 'tcr-assistant' }).catch(() => {});
    await applyManifests(
      kc,
      shipped.map((o) => loadYaml<KubernetesObject>(JSON.stringify(o))),
    );
    try {
      const { proc, env } = await boot('webhook');
      await waitFor(
        'the webhook to be ready',
        async () => ((await httpStatus(env.HTTP_PORT as string, '/readyz')) === 200 ? true : undefined),
        { timeoutMs: 45_000, intervalMs: 250 },
      ).catch((error) => {
        throw new Error(`${error.message}\n${proc.tail()}`);
      });
      const caBundle = await waitFor('the caBundle injected', async () => {
        const config = await admission.readMutatingWebhookConfiguration({ name: 'tcr-assistant' });
        return config.webhooks?.[0]?.clientConfig.caBundle;
      });
      // A client that trusts only that caBundle and asks for the Service's name: what the API server does.
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `boot-${suffix}`,
          kind: { group: '', version: 'v1', kind: 'ServiceAccount' },
          namespace: 'default',
          operation: 'CREATE',
          object: { metadata: { name: `boot-${suffix}`, namespace: 'default' } },
        },
      };
      const answer = await new Promise<string>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: Number(env.WEBHOOK_PORT),
            path: '/mutate-serviceaccounts',
            method: 'POST',
            ca: Buffer.from(caBundle, 'base64'),
            servername: env.WEBHOOK_DNS_NAMES,
            headers: { 'Content-Type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(review));
      });
      expect(JSON.parse(answer).response).toMatchObject({ uid: `boot-${suffix}`, allowed: true });
      expect(proc.tail(200)).not.toMatch(/Warning|warning:|Error:|failed/);
      await stopLikeKubelet(proc, 15_000);
    } finally {
      await admission.deleteMutatingWebhookConfiguration({ name: 'tcr-assistant' }).catch(() => {});
    }
  });

  it('hosts-updater: as root with its one ConfigMap permission, writes the block into the bind-mounted hosts file of a read-only root, stops on SIGTERM', async () => {
    const { proc } = await boot('hosts-updater');
    const hosts = await waitFor(
      'the managed block in the hosts file',
      async () => {
        const text = await readFile(path.join(dir, 'hosts'), 'utf8');
        return text.includes(`127.0.0.9 boot-${suffix}.example.com`) ? text : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    ).catch((error) => {
      throw new Error(`${error.message}\n${proc.tail()}`);
    });
    expect(hosts.startsWith('127.0.0.1\tlocalhost\n')).toBe(true);
    expect(proc.tail(200)).not.toMatch(/list\/watch failed/);
    await stopLikeKubelet(proc, 10_000);
  });
});

/** serverless.yml's `${env:NAME}` / `${env:NAME, 'default'}` resolved as the Serverless Framework does. */
function serverlessEnvironment(given: Record<string, string>): Record<string, string> {
  const doc = parseYaml(readFileSync(path.join(REPO_ROOT, 'serverless.yml'), 'utf8'));
  const vars = doc.inputs.environment.variables as Record<string, string | number>;
  return Object.fromEntries(
    Object.entries(vars).map(([name, raw]) => [
      name,
      String(raw).replace(/\$\{env:([A-Z0-9_]+)(?:,\s*'([^']*)')?\}/g, (_m, v: string, def?: string) => {
        const value = given[v] ?? def;
        if (value === undefined) throw new Error(`serverless.yml needs ${v} (no default)`);
        return value;
      }),
    ]),
  );
}

/** Runs the package's handler once, as SCF would, in a fresh Node process with exactly `env`. */
async function invokeScf(pkg: string, env: Record<string, string>) {
  const script = `
    const { main_handler } = require(${JSON.stringify(path.join(pkg, 'index.js'))});
    main_handler(
      { Type: 'Timer', TriggerName: 'drain-queue', Time: new Date().toISOString(), Message: 'drain' },
      { time_limit_in_ms: 4000, memory_limit_in_mb: 256, request_id: 'boot', function_name: 'tcr-assistant-reconcile' },
    ).then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e.message); process.exit(1); });`;
  return run(process.execPath, ['-e', script], {
    env: { ...env, PATH: process.env.PATH ?? '' },
    cwd: pkg,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: e.code ?? 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

describe('the SCF package, with serverless.yml as written', () => {
  const deployEnv = () => ({
    REDIS_URL: inject('redisUrl'),
    CLUSTER_ID: `scf-boot-${suffix}`,
    VPC_ID: 'vpc-boot',
    SUBNET_ID: 'subnet-boot',
  });
  // SCF serves the package at /var/user: here, at the package folder.
  const atPackage = (env: Record<string, string>, pkg: string) =>
    Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(/^\/var\/user\//, `${pkg}/`)]));

  it('boots and drains with its own environment (empty optional values accepted, kubeconfig packaged)', async () => {
    const pkg = path.join(dir, 'scf');
    await run(process.execPath, [path.join(REPO_ROOT, 'infra', 'scripts', 'build-scf.mjs')], {
      env: { ...process.env, SCF_OUT_DIR: pkg, SCF_KUBECONFIG: inject('functionsKubeconfigPath') },
    });
    const env = serverlessEnvironment(deployEnv());
    expect(env.FLEET_FILE).toBe('');
    expect(env.TENCENTCLOUD_SECRET_ID).toBe('');
    const result = await invokeScf(pkg, atPackage(env, pkg));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}')).toMatchObject({ requestId: 'boot' });
  });

  it('names the build variable when serverless.yml points at a file the package lacks', async () => {
    const pkg = path.join(dir, 'scf-bare');
    await run(process.execPath, [path.join(REPO_ROOT, 'infra', 'scripts', 'build-scf.mjs')], {
      env: { ...process.env, SCF_OUT_DIR: pkg, SCF_KUBECONFIG: '' },
    });
    const result = await invokeScf(pkg, atPackage(serverlessEnvironment(deployEnv()), pkg));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `KUBECONFIG is ${pkg}/kubeconfig, which is not in the function's package`,
    );
    expect(result.stderr).toContain('SCF_KUBECONFIG=<file> npm run build:scf');
  });

  it('packages the fleet file and boots with FLEET_FILE pointing at it', async () => {
    const pkg = path.join(dir, 'scf-fleet');
    const fleet = path.join(dir, 'fleet.yaml');
    // The packaged kubeconfig ($KUBECONFIG) by its context.
    const context = parseYaml(readFileSync(inject('functionsKubeconfigPath'), 'utf8'))['current-context'];
    await writeFile(
      fleet,
      `name: boot\nclusters:\n  - { id: scf-boot-${suffix}, kubeconfig: { context: ${JSON.stringify(context)} } }\n`,
    );
    await run(process.execPath, [path.join(REPO_ROOT, 'infra', 'scripts', 'build-scf.mjs')], {
      env: {
        ...process.env,
        SCF_OUT_DIR: pkg,
        SCF_KUBECONFIG: inject('functionsKubeconfigPath'),
        SCF_FLEET_FILE: fleet,
      },
    });
    const env = atPackage(serverlessEnvironment({ ...deployEnv(), FLEET_FILE: '/var/user/fleet.yaml' }), pkg);
    const result = await invokeScf(pkg, env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
