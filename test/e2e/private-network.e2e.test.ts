import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { KubeCluster } from '../../functions/adapters/kube/kube-cluster.js';
import { KubeSystemObjects } from '../../functions/adapters/kube/kube-system-objects.js';
import { TencentTcrApi } from '../../functions/adapters/tencent-tcr.js';
import type { PrivateEndpointsDeps } from '../../functions/core/ports.js';
import { refreshPrivateEndpoints } from '../../functions/core/private-endpoints/refresh-private-endpoints.js';
import { ensureSchedules, privateEndpointsSchedulerId } from '../../functions/runtime/schedules.js';
import { runHostsUpdater } from '../../hosts-updater/agent.js';
import { BLOCK_BEGIN, BLOCK_END } from '../../hosts-updater/hosts-block.js';
import { FUNCTIONS_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { FINALIZER } from '../../shared/contracts/labels.js';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';
import { UPDATER_CONFIG_MAP_NAME } from '../../shared/contracts/updater-config.js';
import { TerminalError } from '../../shared/errors.js';
import { listWatchOf } from '../../shared/kube/client-node-connection.js';
import { createLogger } from '../../shared/logging.js';
import { createCr, deleteCr, patchCrSpec, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, LogCapture, startFunctions } from '../support/functions.js';
import {
  adminKubeConfig,
  impersonatingKubeConfig,
  serviceAccountUser,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { apiserverWriteCount, quietWriteCount } from '../support/metrics.js';
import { waitFor } from '../support/wait.js';

// Private-network resolving end to end: CRs with spec.privateNetwork → the refresh function (as the
// functions' ServiceAccount) → TCR's DescribeInternalEndpoints (the local emulator, through the real SDK) →
// ConfigMap tcr-assistant-system/updater-config → the hosts-updater agent (as its own ServiceAccount) →
// the managed block of a hosts file.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const functionsKc = impersonatingKubeConfig(serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT));
const agentKc = impersonatingKubeConfig(serviceAccountUser(SYSTEM_NAMESPACE, 'tcr-assistant-hosts-updater'));

const REGION = 'ap-guangzhou';
const OTHER_REGION = 'ap-shanghai';
const REGISTRY = `tcr-e2e${randomBytes(3).toString('hex')}`;
const OTHER_REGISTRY = `tcr-e2f${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDE2E${randomBytes(12).toString('hex').toUpperCase()}`;
const SECRET_KEY = `e2eKey${randomBytes(16).toString('hex')}`;
const WRONG_KEY = `e2eWrong${randomBytes(16).toString('hex')}`;
const keySecret = uniqueName('tcr-api-key');
const wrongKeySecret = uniqueName('tcr-api-key-wrong');
const crA = uniqueName('pn-a');
const crB = uniqueName('pn-b');
const domainA = `${crA}.tencentcloudcr.com`;
const ORIGINAL_HOSTS = '127.0.0.1 localhost\n# a comment the agent must keep\n::1 localhost ip6-localhost\n';

let emulator: TencentEmulator;
let deps: PrivateEndpointsDeps;
let functionWrites = 0;
const functionLogs = new LogCapture();
const agentLogs = new LogCapture();
const errors: string[] = [];
/** The ConfigMap (all of it) after every refresh. */
const configMapSnapshots: string[] = [];
let hostsDir: string;
let hostsPath: string;
const stopAgent = new AbortController();
let agent: Promise<void> | undefined;
const savedEnv = { ...process.env };

const readConfigMap = async () => {
  try {
    return await core.readNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME });
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
};
const deleteConfigMap = () =>
  core
    .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
    .catch((error) => {
      if (statusOf(error) !== 404) throw error;
    });
const hostsOf = async () => JSON.parse((await readConfigMap())?.data?.hosts ?? '[]');
const hostsFile = () => readFile(hostsPath, 'utf8');
const block = (...lines: string[]) => [BLOCK_BEGIN, ...lines, BLOCK_END].join('\n');

/** Runs the refresh, keeping every error message and the ConfigMap after it (to prove none carries the key). */
async function refresh() {
  try {
    return await refreshPrivateEndpoints(deps);
  } catch (error) {
    errors.push((error as Error).message);
    throw error;
  } finally {
    configMapSnapshots.push(JSON.stringify(await readConfigMap()));
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the refresh to fail');
}

const tcrSpec = (registryId: string, region: string, secret: string, namespace = SYSTEM_NAMESPACE) => ({
  registryId,
  region,
  credentialsSecretRef: { namespace, name: secret },
});

async function removeCr(name: string): Promise<void> {
  const cr = await readCr(kc, name).catch(() => undefined);
  if (!cr) return;
  const index = cr.metadata.finalizers?.indexOf(FINALIZER) ?? -1;
  if (index >= 0) {
    await kc.makeApiClient(CustomObjectsApi).patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name,
        body: [{ op: 'remove', path: `/metadata/finalizers/${index}` }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  }
  await deleteCr(kc, name).catch(() => {});
}

beforeAll(async () => {
  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [
      { registryId: REGISTRY, region: REGION },
      { registryId: OTHER_REGISTRY, region: OTHER_REGION },
    ],
    internalEndpoints: {
      [REGISTRY]: [{ vpcId: 'vpc-e2e1', subnetId: 'subnet-e2e1', accessIp: '10.10.0.5' }],
      [OTHER_REGISTRY]: [{ vpcId: 'vpc-e2e2', subnetId: 'subnet-e2e2', accessIp: '10.20.0.5' }],
    },
  });
  // API keys as an operator stores them: Secrets in tcr-assistant-system (written as admin).
  for (const [name, key] of [
    [keySecret, SECRET_KEY],
    [wrongKeySecret, WRONG_KEY],
  ] as const) {
    await core.createNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      body: { metadata: { name }, stringData: { SecretId: SECRET_ID, SecretKey: key } },
    });
  }
  await deleteConfigMap();

  const observe = (verb: string) => {
    if (['create', 'update', 'patch', 'delete'].includes(verb)) functionWrites += 1;
  };
  deps = {
    cluster: new KubeCluster(CLUSTER, functionsKc, observe),
    configMaps: new KubeSystemObjects(functionsKc, SYSTEM_NAMESPACE, observe),
    secrets: new KubeSystemObjects(functionsKc, SYSTEM_NAMESPACE, observe),
    tcr: new TencentTcrApi({ endpoint: emulator.endpoint, protocol: 'http://', timeoutSeconds: 5 }),
    defaultCredential: undefined,
    log: createLogger('functions', 'debug', functionLogs),
  };

  hostsDir = await mkdtemp(path.join(os.tmpdir(), 'tcr-hosts-'));
  hostsPath = path.join(hostsDir, 'hosts');
  await writeFile(hostsPath, ORIGINAL_HOSTS);
  agent = runHostsUpdater({
    api: listWatchOf(agentKc),
    namespace: SYSTEM_NAMESPACE,
    configMapName: UPDATER_CONFIG_MAP_NAME,
    hostsPath,
    log: createLogger('hosts-updater', 'debug', agentLogs),
    signal: stopAgent.signal,
    retryInitialMs: 100,
    retryMaxMs: 1000,
  });
});

afterAll(async () => {
  stopAgent.abort();
  await agent?.catch(() => {});
  for (const cr of [crA, crB]) await removeCr(cr).catch(() => {});
  for (const name of [keySecret, wrongKeySecret])
    await core.deleteNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name }).catch(() => {});
  await deleteConfigMap().catch(() => {});
  await emulator?.stop();
  if (hostsDir) await rm(hostsDir, { recursive: true, force: true });
  process.env = savedEnv;
});

describe('the functions’ Role in tcr-assistant-system (infra/rbac/functions-system.yaml)', () => {
  const can = async (verb: string, resource: string, namespace: string, name?: string) =>
    (
      await functionsKc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { verb, resource, namespace, ...(name ? { name } : {}) } } },
      })
    ).status?.allowed ?? false;

  it.each([
    ['get', 'configmaps', SYSTEM_NAMESPACE, UPDATER_CONFIG_MAP_NAME, true],
    ['update', 'configmaps', SYSTEM_NAMESPACE, UPDATER_CONFIG_MAP_NAME, true],
    ['create', 'configmaps', SYSTEM_NAMESPACE, undefined, true],
    ['get', 'configmaps', SYSTEM_NAMESPACE, 'another-config', false],
    ['update', 'configmaps', SYSTEM_NAMESPACE, 'another-config', false],
    ['delete', 'configmaps', SYSTEM_NAMESPACE, UPDATER_CONFIG_MAP_NAME, false],
    ['list', 'configmaps', SYSTEM_NAMESPACE, undefined, false],
    ['create', 'configmaps', 'default', undefined, false],
    ['get', 'secrets', SYSTEM_NAMESPACE, 'any-key', true],
    ['get', 'secrets', 'default', 'any-key', false],
  ] as const)('%s %s in %s (%s): %s', async (verb, resource, namespace, name, allowed) => {
    expect(await can(verb, resource, namespace, name)).toBe(allowed);
  });
});

describe('private-network resolving', () => {
  it('fills the ConfigMap when a CR enables privateNetwork, and the agent writes the block', async () => {
    await createCr(kc, crA, {
      docker: { server: domainA },
      tcr: tcrSpec(REGISTRY, REGION, keySecret),
      privateNetwork: { enabled: true },
    });
    const result = await refresh();
    expect(result.actions).toEqual([
      {
        verb: 'created',
        object: 'ConfigMap tcr-assistant-system/updater-config',
        detail: 'enabled=true, 1 host(s)',
      },
    ]);
    const cm = await readConfigMap();
    expect(cm?.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('tcr-assistant');
    expect(cm?.data).toEqual({
      enabled: 'true',
      hosts: JSON.stringify([{ domain: domainA, ip: '10.10.0.5' }]),
    });

    await waitFor('the agent to write the block', async () =>
      (await hostsFile()) === `${ORIGINAL_HOSTS}${block(`10.10.0.5 ${domainA}`)}\n` ? true : undefined,
    );
  });

  it('makes zero writes when run again with nothing changed', async () => {
    const server = await quietWriteCount(kc, ['configmaps']);
    const before = { client: functionWrites, server };
    const result = await refresh();
    expect(result.actions.map((a) => a.verb)).toEqual(['noop']);
    expect(functionWrites).toBe(before.client);
    expect(await apiserverWriteCount(kc, ['configmaps'])).toBe(before.server);
    // quietWriteCount may wait for an earlier file's namespaces to finish terminating (up to 180 s).
  }, 300_000);

  it('skips an endpoint whose IP is bad and uses the next Running one', async () => {
    emulator.setInternalEndpoints(REGISTRY, [
      { vpcId: 'vpc-e2e0', subnetId: 'subnet-e2e0', accessIp: '10.10.0.300' },
      { vpcId: 'vpc-e2e1', subnetId: 'subnet-e2e1', accessIp: '10.10.1.7' },
    ]);
    const result = await refresh();
    expect(result.actions[0]?.verb).toBe('updated');
    expect(await hostsOf()).toEqual([{ domain: domainA, ip: '10.10.1.7' }]);
    expect(functionLogs.text).toMatch(
      /private endpoint ignored.*10\.10\.0\.300|10\.10\.0\.300.*private endpoint ignored/,
    );
    await waitFor('the agent to follow', async () =>
      (await hostsFile()).includes(`10.10.1.7 ${domainA}\n`) ? true : undefined,
    );
    expect(await hostsFile()).not.toContain('10.10.0.300');
  });

  it('names the registry, region and Secret when the SecretKey is wrong, and keeps the other entries', async () => {
    await createCr(kc, crB, {
      docker: { server: `${crB}.tencentcloudcr.com` },
      tcr: tcrSpec(OTHER_REGISTRY, OTHER_REGION, wrongKeySecret),
      privateNetwork: { enabled: true },
    });
    const error = await rejection(refresh());
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toContain(
      `ImagePullSecret ${crB} (API key from Secret ${SYSTEM_NAMESPACE}/${wrongKeySecret}): DescribeInternalEndpoints of registry ${OTHER_REGISTRY} in ${OTHER_REGION}: AuthFailure.SignatureFailure`,
    );
    expect(await hostsOf()).toEqual([{ domain: domainA, ip: '10.10.1.7' }]);
  });

  it('refuses a credentialsSecretRef outside tcr-assistant-system, saying where the Secret must be', async () => {
    await patchCrSpec(kc, crB, { tcr: tcrSpec(OTHER_REGISTRY, OTHER_REGION, keySecret, 'default') });
    const error = await rejection(refresh());
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toContain(
      `names Secret default/${keySecret}: the Secret must be in namespace tcr-assistant-system`,
    );
    // With the right Secret, both registries are mapped.
    await patchCrSpec(kc, crB, { tcr: tcrSpec(OTHER_REGISTRY, OTHER_REGION, keySecret) });
    await refresh();
    expect(await hostsOf()).toEqual(
      [
        { domain: domainA, ip: '10.10.1.7' },
        { domain: `${crB}.tencentcloudcr.com`, ip: '10.20.0.5' },
      ].sort((a, b) => (a.domain < b.domain ? -1 : 1)),
    );
    await removeCr(crB);
    await refresh();
    expect(await hostsOf()).toEqual([{ domain: domainA, ip: '10.10.1.7' }]);
  });

  it('runs as a scheduled job of the local worker (ensureSchedules), as the functions’ ServiceAccount', async () => {
    Object.assign(process.env, {
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
    });
    emulator.setInternalEndpoints(REGISTRY, [
      { vpcId: 'vpc-e2e1', subnetId: 'subnet-e2e1', accessIp: '10.10.2.8' },
    ]);
    let fx: FunctionsHarness | undefined;
    try {
      fx = await startFunctions();
      await ensureSchedules(fx.rt, {
        env: { PRIVATE_ENDPOINTS_EVERY_MS: 600_000, REGISTRY_TOKENS_EVERY_MS: 0 },
      });
      expect((await fx.rt.queue.getJobSchedulers()).map((s) => s.key)).toEqual([
        privateEndpointsSchedulerId(CLUSTER),
      ]);
      // Idempotent: a second worker start keeps one schedule.
      await ensureSchedules(fx.rt, {
        env: { PRIVATE_ENDPOINTS_EVERY_MS: 600_000, REGISTRY_TOKENS_EVERY_MS: 0 },
      });
      expect(await fx.rt.queue.getJobSchedulers()).toHaveLength(1);
      await waitFor('the scheduled refresh to publish the new IP', async () =>
        JSON.stringify(await hostsOf()) === JSON.stringify([{ domain: domainA, ip: '10.10.2.8' }])
          ? true
          : undefined,
      );
      const audit = await waitFor('the audit entry', async () => {
        const entries = await listAudit(fx!.rt.redis, fx!.rt.auditKey, { cluster: CLUSTER });
        return entries.find((e) => e.kind === 'private-endpoints');
      });
      expect(audit).toMatchObject({
        outcome: 'success',
        trigger: 'resync',
        key: `private-endpoints updater-config @${CLUSTER}`,
      });
      expect(audit.actions[0]).toMatchObject({
        verb: 'updated',
        object: 'ConfigMap tcr-assistant-system/updater-config',
      });
      functionLogs.lines.push(fx.logs.text);
    } finally {
      await fx?.close();
    }
  });

  it('runs from the SCF timer whose argument is private-endpoints', async () => {
    const prefix = `{scfpn${randomBytes(3).toString('hex')}}`;
    Object.assign(process.env, {
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      CLUSTER_ID: CLUSTER,
      KUBECONFIG: inject('functionsKubeconfigPath'),
      LOG_LEVEL: 'silent',
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
    });
    emulator.setInternalEndpoints(REGISTRY, [
      { vpcId: 'vpc-e2e1', subnetId: 'subnet-e2e1', accessIp: '10.10.3.9' },
    ]);
    const scf = await import('../../functions/scf/index.js');
    const timer = (Message: string) => ({
      Type: 'Timer',
      TriggerName: 't',
      Time: new Date().toISOString(),
      Message,
    });
    const context = { time_limit_in_ms: 30_000, request_id: 'e2e' };
    try {
      // The drain timer does not refresh.
      expect((await scf.main_handler(timer('drain'), context)).processed).toBe(0);
      expect(await hostsOf()).toEqual([{ domain: domainA, ip: '10.10.2.8' }]);
      const result = await scf.main_handler(timer('private-endpoints'), context);
      expect(result).toMatchObject({ processed: 1, failed: 0 });
      expect(await hostsOf()).toEqual([{ domain: domainA, ip: '10.10.3.9' }]);
    } finally {
      await scf.resetWarmRuntime();
      const { connectRedis, openQueue } = await import('../../shared/queue.js');
      const redis = connectRedis(inject('redisUrl'));
      await openQueue(redis, { prefix, attempts: 1, backoffMs: 10 })
        .obliterate({ force: true })
        .catch(() => {});
      redis.disconnect();
    }
  });

  it('disables the map when the CR turns privateNetwork off, and the agent removes the block', async () => {
    await patchCrSpec(kc, crA, { privateNetwork: { enabled: false } });
    const result = await refresh();
    expect(result.actions[0]).toMatchObject({ verb: 'updated', detail: 'enabled=false, 0 host(s)' });
    expect((await readConfigMap())?.data).toEqual({ enabled: 'false', hosts: '[]' });
    // Byte for byte the file it was before the block came.
    await waitFor('the agent to remove the block', async () =>
      (await hostsFile()) === ORIGINAL_HOSTS ? true : undefined,
    );
  });

  it('never changes a ConfigMap of that name that is not ours', async () => {
    await deleteConfigMap();
    const foreign = await core.createNamespacedConfigMap({
      namespace: SYSTEM_NAMESPACE,
      body: {
        metadata: { name: UPDATER_CONFIG_MAP_NAME },
        data: { enabled: 'false', owner: 'someone else' },
      },
    });
    await patchCrSpec(kc, crA, { privateNetwork: { enabled: true } });
    const error = await rejection(refresh());
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(/exists but is not ours/);
    expect((await readConfigMap())?.metadata?.resourceVersion).toBe(foreign.metadata?.resourceVersion);
    // A create that meets an existing ConfigMap (a race) is told so, without changing it.
    const create = { name: UPDATER_CONFIG_MAP_NAME, labels: {}, annotations: {}, data: {} };
    expect(await deps.configMaps.createConfigMap(create)).toBe('exists');
    expect((await readConfigMap())?.metadata?.resourceVersion).toBe(foreign.metadata?.resourceVersion);
    await deleteConfigMap();
  });

  it('never shows the SecretKey in the ConfigMap, logs or errors', async () => {
    const everything = [...configMapSnapshots, functionLogs.text, agentLogs.text, ...errors].join('\n');
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(configMapSnapshots.length).toBeGreaterThanOrEqual(5);
    for (const key of [SECRET_KEY, WRONG_KEY]) expect(everything).not.toContain(key);
  });
});
