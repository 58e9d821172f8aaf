import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { TOKEN_KEY_LABEL, tokenSecretName } from '../../functions/core/registry-tokens/token-store.js';
import { runJob } from '../../functions/core/run-job.js';
import { buildFunctionsRuntime, type FunctionsRuntime } from '../../functions/runtime/build-runtime.js';
import { describeFleet, formatFleet } from '../../functions/runtime/fleet-view.js';
import { ensureSchedules } from '../../functions/runtime/schedules.js';
import { startWorker } from '../../functions/runtime/worker.js';
import { type ControlPlane, startControlPlane } from '../../infra/local/control-plane.js';
import {
  CRD_FILE,
  CRD_NAME,
  FUNCTIONS_RBAC_FILE,
  FUNCTIONS_SERVICE_ACCOUNT,
  NAMESPACE_FILE,
  RBAC_DIR,
  REPO_ROOT,
  SYSTEM_NAMESPACE,
} from '../../infra/local/paths.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { FunctionsEnv, parseEnv } from '../../shared/config.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/contracts/jobs.js';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';
import { waitForCrdEstablished } from '../../shared/kube/crd.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { createLogger } from '../../shared/logging.js';
import { enqueueJobs } from '../../shared/queue.js';
import { createCr, deleteCr } from '../support/crs.js';
import { LogCapture } from '../support/functions.js';
import {
  adminKubeConfig,
  createNamespace,
  serviceAccountUser,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { dockerConfigOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// Tokens for a fleet of three real clusters (the run's control plane and two more started here), with the
// Tencent Cloud API emulator behind the real SDK: c1 and c2 are reached through kubeconfig contexts, c3 through
// TKE's DescribeClusterKubeconfig. The functions run as their ServiceAccount in every cluster.

const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-fleet${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDFLEET${randomBytes(10).toString('hex').toUpperCase()}`;
const SECRET_KEY = `fleetKey${randomBytes(16).toString('hex')}`;
const WRONG_KEY = `fleetWrong${randomBytes(16).toString('hex')}`;
const TKE_CLUSTER = 'cls-fleet3';
const IDS = ['c1', 'c2', 'c3'] as const;
type Id = (typeof IDS)[number];
const CR = uniqueName('fleet-app');
const SERVER = 'fleet-demo.tencentcloudcr.com';
const FUNCTIONS_USER = serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT);

let emulator: TencentEmulator;
let planes: ControlPlane[] = [];
let dir: string;
let rt: FunctionsRuntime;
let worker: Worker;
const logs = new LogCapture();
const admin = {} as Record<Id, KubeConfig>;
const namespaces = {} as Record<Id, string[]>;
/** Every token value issued during the file, to prove none leaks anywhere. */
const issuedTokens = new Set<string>();

const core = (id: Id) => admin[id].makeApiClient(CoreV1Api);

async function storedToken(
  id: Id,
): Promise<{ username: string; token: string; tokenId?: string } | undefined> {
  let secret: V1Secret;
  try {
    secret = await core(id).readNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      name: tokenSecretName(`${REGISTRY}.longterm`),
    });
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
  const decode = (v = '') => Buffer.from(v, 'base64').toString('utf8');
  const token = decode(secret.data?.token);
  issuedTokens.add(token);
  return {
    username: decode(secret.data?.username),
    token,
    tokenId: secret.metadata?.annotations?.['tcr.tencentcloudcr.com/token-id'],
  };
}

/** Every matching namespace of every listed cluster has the Secret with this password. */
async function everySecretCarries(ids: readonly Id[], password: string): Promise<boolean> {
  for (const id of ids) {
    for (const ns of namespaces[id]) {
      const secret = await readSecret(admin[id], ns, `tcr.ips${CR}`);
      if (!secret || dockerConfigOf(secret).auths[SERVER]?.password !== password) return false;
    }
  }
  return true;
}

const tokensCreated = () =>
  emulator.calls('CreateInstanceToken') -
  emulator.callLog().filter((c) => c.action === 'CreateInstanceToken' && c.code).length;

async function setUpCluster(kc: KubeConfig) {
  await applyManifests(kc, await readManifests(CRD_FILE));
  await waitForCrdEstablished(kc, CRD_NAME);
  await applyManifests(kc, await readManifests(NAMESPACE_FILE));
  await applyManifests(kc, await readManifests(FUNCTIONS_RBAC_FILE));
  await applyManifests(kc, await readManifests(path.join(RBAC_DIR, 'functions-system.yaml')));
}

const loadKc = (file: string) => {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-fleet-e2e-'));
  const [p2, p3] = await Promise.all([
    startControlPlane({ name: 'fleet-c2' }),
    startControlPlane({ name: 'fleet-c3' }),
  ]);
  planes = [p2!, p3!];
  admin.c1 = adminKubeConfig();
  admin.c2 = loadKc(p2!.kubeconfigPath);
  admin.c3 = loadKc(p3!.kubeconfigPath);
  await Promise.all([setUpCluster(admin.c2), setUpCluster(admin.c3)]);

  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [{ registryId: REGISTRY, region: REGION }],
    clusters: [
      {
        clusterId: TKE_CLUSTER,
        region: REGION,
        kubeconfig: await readFile(await p3!.kubeconfigAs(FUNCTIONS_USER), 'utf8'),
      },
    ],
  });

  // c1 and c2 by kubeconfig context (each file impersonates the functions' ServiceAccount), c3 by TKE id.
  const c1File = inject('functionsKubeconfigPath');
  const c2File = await p2!.kubeconfigAs(FUNCTIONS_USER);
  const fleetFile = path.join(dir, 'fleet.yaml');
  await writeFile(
    fleetFile,
    [
      'name: e2e-fleet',
      'clusters:',
      `  - { id: c1, kubeconfig: { path: ${JSON.stringify(c1File)}, context: ${JSON.stringify(loadKc(c1File).currentContext)} } }`,
      `  - { id: c2, kubeconfig: { path: ${JSON.stringify(c2File)}, context: ${JSON.stringify(loadKc(c2File).currentContext)} } }`,
      `  - { id: c3, tke: { clusterId: ${TKE_CLUSTER}, region: ${REGION} } }`,
      'registries:',
      `  - { registryId: ${REGISTRY}, region: ${REGION}, tokenType: longterm, clusters: ["*"] }`,
    ].join('\n'),
  );
  const env = parseEnv(FunctionsEnv, {
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `{f${randomBytes(4).toString('hex')}}`,
    CLUSTER_ID: 'c1',
    FLEET_FILE: fleetFile,
    STATUS_DELAY_MS: '200',
    JOB_BACKOFF_MS: '200',
    TOKEN_REVOKE_GRACE_SECONDS: '3',
    TOKEN_CLUSTER_TIMEOUT_MS: '3000',
    WORKER_CONCURRENCY: '8',
    LOG_LEVEL: 'debug',
  });
  rt = buildFunctionsRuntime(env, {
    log: createLogger('functions', 'debug', logs),
    tencentEnv: {
      TENCENTCLOUD_SECRET_ID: SECRET_ID,
      TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
      TENCENTCLOUD_TIMEOUT_SECONDS: 5,
    },
  });
  worker = startWorker(rt);
  await worker.waitUntilReady();

  for (const id of IDS) {
    namespaces[id] = [uniqueName(`fleet-${id}-a`), uniqueName(`fleet-${id}-b`)];
    for (const ns of namespaces[id]) await createNamespace(admin[id], ns);
    await createCr(admin[id], CR, {
      namespaces: namespaces[id].join(','),
      docker: { server: SERVER },
      tcr: { registryId: REGISTRY, region: REGION, tokenType: 'longterm' },
    });
  }
}, 240_000);

afterAll(async () => {
  // Leave the shared cluster as it was: our CRs (the workers remove their Secrets and finalizers) and the
  // token Secrets, so that no later file's refresher sees them.
  if (rt && admin.c1) {
    const custom = admin.c1.makeApiClient(CustomObjectsApi);
    const list = (await custom.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
    })) as {
      items: { metadata: { name: string } }[];
    };
    const ours = list.items.map((i) => i.metadata.name).filter((n) => n === CR || n.startsWith('bad-'));
    for (const name of ours) await deleteCr(admin.c1, name).catch(() => {});
    await enqueueJobs(
      rt.queue,
      ours.map((name) => ({ key: { cluster: 'c1', kind: 'imagepullsecret', name }, trigger: 'deleted' })),
    );
    await waitFor(
      'our CRs to be cleaned up',
      async () => {
        const left = (await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
        })) as {
          items: { metadata: { name: string } }[];
        };
        return !left.items.some((i) => ours.includes(i.metadata.name));
      },
      { timeoutMs: 30_000 },
    ).catch(() => {});
    await core('c1')
      .deleteCollectionNamespacedSecret({ namespace: SYSTEM_NAMESPACE, labelSelector: TOKEN_KEY_LABEL })
      .catch(() => {});
    await core('c1')
      .deleteNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name: 'wrong-api-key' })
      .catch(() => {});
  }
  await worker?.close();
  await rt?.queue.obliterate({ force: true }).catch(() => {});
  await rt?.close();
  await emulator?.stop();
  await Promise.all(planes.map((p) => p.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fleet tokens across three clusters', () => {
  it('issues one token for the fleet and it reaches every matching namespace of every cluster', async () => {
    // What the relay does when it sees the new CRs.
    await enqueueJobs(
      rt.queue,
      IDS.map((id) => ({ key: { cluster: id, kind: 'imagepullsecret', name: CR }, trigger: 'added' })),
    );
    const first = await waitFor('a token in c1', () => storedToken('c1'));
    await waitFor(
      'the token in every namespace of every cluster',
      () => everySecretCarries(IDS, first.token),
      {
        timeoutMs: 60_000,
      },
    );
    expect(tokensCreated()).toBe(1);
    expect(emulator.isTokenValid(first.username, first.token, REGISTRY)).toBe(true);
    // c3's kubeconfig came from TKE, once for the warm instance.
    expect(emulator.calls('DescribeClusterKubeconfig')).toBe(1);
    for (const id of IDS) expect((await storedToken(id))?.token).toBe(first.token);
  });

  it('rotates: one CreateInstanceToken, replaced everywhere, the old long-term token revoked after the grace period', async () => {
    const before = (await storedToken('c1'))!;
    const created = tokensCreated();
    // Scheduled refresh every second from here on (as the worker's schedule, shortened for the test).
    await ensureSchedules(rt, {
      clusters: [],
      env: { PRIVATE_ENDPOINTS_EVERY_MS: 0, REGISTRY_TOKENS_EVERY_MS: 1000 },
    });
    await rt.tokenReports.requestRotation([REGISTRY]);
    await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'cli' }]);
    const after = await waitFor('a new token in c1', async () => {
      const t = await storedToken('c1');
      return t && t.token !== before.token ? t : undefined;
    });
    await waitFor('the new token everywhere', () => everySecretCarries(IDS, after.token), {
      timeoutMs: 60_000,
    });
    expect(tokensCreated()).toBe(created + 1);
    await waitFor(
      'the replaced token to be revoked',
      () => !emulator.listTokens(REGISTRY).some((t) => t.tokenId === before.tokenId),
      { timeoutMs: 30_000 },
    );
    expect(emulator.isTokenValid(before.username, before.token, REGISTRY)).toBe(false);
    expect(emulator.isTokenValid(after.username, after.token, REGISTRY)).toBe(true);
    // Several scheduled runs later: still exactly one token issued for this rotation.
    await new Promise((r) => setTimeout(r, 2500));
    expect(tokensCreated()).toBe(created + 1);
  });

  it('`functions fleet` shows every cluster and CR: desired/succeeded, token expiry, last refresh', async () => {
    const env = {
      ...process.env,
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: rt.env.QUEUE_PREFIX,
      FLEET_FILE: rt.env.FLEET_FILE,
      LOG_LEVEL: 'silent',
      TENCENTCLOUD_SECRET_ID: SECRET_ID,
      TENCENTCLOUD_SECRET_KEY: SECRET_KEY,
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
    };
    const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    const cli = path.join(REPO_ROOT, 'functions', 'cli.ts');
    const { stdout } = await promisify(execFile)(tsx, [cli, 'fleet'], { env });
    expect(stdout).toContain('fleet e2e-fleet');
    for (const id of IDS) {
      expect(stdout).toMatch(
        new RegExp(`${id}\\s+${CR}\\s+2\\s+2\\s+True Synced\\s+${REGISTRY}\\.longterm\\s+never`),
      );
      expect(stdout).toMatch(
        new RegExp(`${id}\\s+${REGISTRY}\\.longterm\\s+\\S+\\s+never\\s+tk-[0-9a-f]+\\s+\\d+\\s+\\S+ ok`),
      );
    }
    expect(stdout).not.toContain(SECRET_KEY);
  });

  it('a cluster stopped during a rotation is reported, keeps the old token alive, and converges once it is back', async () => {
    const before = (await storedToken('c1'))!;
    const created = tokensCreated();
    await planes[0]!.stopApiserver();
    try {
      await rt.tokenReports.requestRotation([REGISTRY]);
      const after = await waitFor('a new token in c1', async () => {
        const t = await storedToken('c1');
        return t && t.token !== before.token ? t : undefined;
      });
      await waitFor('the new token in c1 and c3', () => everySecretCarries(['c1', 'c3'], after.token), {
        timeoutMs: 60_000,
      });
      const reported = await waitFor('the refresher to report c2', async () => {
        const entries = await listAudit(rt.redis, rt.auditKey, { cluster: 'fleet' });
        return entries.find((e) => e.outcome !== 'success' && /cluster c2 unreachable/.test(e.error ?? ''));
      });
      expect(reported.actions.some((a) => a.object === 'cluster c2' && a.verb === 'skipped')).toBe(true);
      const view = await describeFleet(rt, 3000);
      expect(view.clusters.find((c) => c.cluster === 'c2')).toMatchObject({ reachable: false });
      expect(formatFleet(view)).toMatch(/c2\s+-\s+-\s+-\s+Unreachable/);
      // Past the grace period, the replaced token stays valid: c2 still depends on it.
      await new Promise((r) => setTimeout(r, 4000));
      expect(emulator.isTokenValid(before.username, before.token, REGISTRY)).toBe(true);
      expect(tokensCreated()).toBe(created + 1);

      await planes[0]!.startApiserver();
      await waitFor('c2 to catch up', () => everySecretCarries(['c2'], after.token), { timeoutMs: 90_000 });
      await waitFor(
        'the replaced token revoked once c2 has the new one',
        () => !emulator.isTokenValid(before.username, before.token, REGISTRY),
        { timeoutMs: 30_000 },
      );
      expect(tokensCreated()).toBe(created + 1);
      const healthy = await describeFleet(rt, 5000);
      for (const c of healthy.clusters) {
        expect(c.reachable).toBe(true);
        expect(c.tokens.find((t) => t.key === `${REGISTRY}.longterm`)?.tokenId).toBe(after.tokenId);
      }
    } finally {
      await planes[0]!.startApiserver().catch(() => {});
    }
  }, 240_000);

  it('retries throttling and service errors with backoff: no token storm', async () => {
    const before = (await storedToken('c1'))!;
    const attempts = emulator.calls('CreateInstanceToken');
    emulator.injectFault({ action: 'CreateInstanceToken', code: 'RequestLimitExceeded', times: 3 });
    emulator.injectFault({ action: 'CreateInstanceToken', code: 'InternalError', times: 2 });
    await rt.tokenReports.requestRotation([REGISTRY]);
    const after = await waitFor(
      'a new token after the faults',
      async () => {
        const t = await storedToken('c1');
        return t && t.token !== before.token ? t : undefined;
      },
      { timeoutMs: 60_000 },
    );
    await waitFor('the new token everywhere', () => everySecretCarries(IDS, after.token), {
      timeoutMs: 60_000,
    });
    // Five refused calls, then the one that worked; nothing more, although the schedule runs every second.
    await new Promise((r) => setTimeout(r, 2500));
    const calls = emulator
      .callLog()
      .filter((c) => c.action === 'CreateInstanceToken')
      .slice(attempts);
    expect(calls.map((c) => c.code ?? 'OK')).toEqual([
      'RequestLimitExceeded',
      'RequestLimitExceeded',
      'RequestLimitExceeded',
      'InternalError',
      'InternalError',
      'OK',
    ]);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(0);
    expect(gaps.reduce((a, b) => a + b, 0)).toBeGreaterThan(200);
  });

  it('bad input gets a clear error naming the item, and nothing else is disturbed', async () => {
    const good = (await storedToken('c1'))!;
    const created = tokensCreated();
    // An unknown registry, an unknown region and a wrong SecretKey, each on a CR of its own in c1.
    await core('c1').createNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      body: {
        metadata: { name: 'wrong-api-key' },
        stringData: { SecretId: SECRET_ID, SecretKey: WRONG_KEY },
      },
    });
    const bad = {
      [uniqueName('bad-registry')]: { registryId: 'tcr-nosuch1', region: REGION },
      [uniqueName('bad-region')]: { registryId: 'tcr-region1', region: 'ap-nowhere' },
      [uniqueName('bad-key')]: {
        registryId: REGISTRY,
        region: REGION,
        tokenType: 'temp',
        credentialsSecretRef: { namespace: SYSTEM_NAMESPACE, name: 'wrong-api-key' },
      },
    };
    for (const [name, tcr] of Object.entries(bad)) {
      await createCr(admin.c1, name, { namespaces: namespaces.c1[0], docker: { server: SERVER }, tcr });
    }
    await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'cli' }]);
    const view = await waitFor('the fleet view to name the three problems', async () => {
      const v = await describeFleet(rt, 5000);
      const rows = v.clusters.find((c) => c.cluster === 'c1')!.crs.filter((r) => r.name in bad);
      return rows.length === 3 && rows.every((r) => r.lastError) ? rows : undefined;
    });
    const errorOf = (prefix: string) => view.find((r) => r.name.startsWith(prefix))!.lastError!;
    expect(errorOf('bad-registry')).toMatch(/registry tcr-nosuch1 in ap-guangzhou: ResourceNotFound/);
    expect(errorOf('bad-region')).toMatch(
      /registry tcr-region1 in ap-nowhere: InvalidParameterValue.*Region/,
    );
    expect(errorOf('bad-key')).toMatch(/registry .* in ap-guangzhou: AuthFailure\.SignatureFailure/);
    for (const r of view) expect(r.tokenExpires).toBe('not issued');
    // The good token is untouched and still everywhere; no extra token was issued for it.
    expect((await storedToken('c1'))?.token).toBe(good.token);
    expect(await everySecretCarries(IDS, good.token)).toBe(true);
    expect(tokensCreated()).toBe(created);

    // A fleet file with a context that does not exist, and a malformed one.
    const badContext = path.join(dir, 'bad-context.yaml');
    await writeFile(
      badContext,
      `name: e2e-bad\nclusters:\n  - { id: c1, kubeconfig: { path: ${JSON.stringify(inject('functionsKubeconfigPath'))}, context: no-such-context } }\n`,
    );
    const badRt = buildFunctionsRuntime(
      parseEnv(FunctionsEnv, {
        REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: '{fbad}',
        FLEET_FILE: badContext,
      }),
      { log: createLogger('functions', 'silent') },
    );
    try {
      const failure = await runJob(
        badRt.runDeps,
        { v: 1, key: REGISTRY_TOKENS_KEY, trigger: 'cli', at: Date.now() },
        { attempt: 1, maxAttempts: 1 },
      ).catch((e: Error) => e);
      expect((failure as Error).message).toMatch(
        /cluster c1 unreachable \(fleet cluster c1: kubeconfig .* has no context "no-such-context"/,
      );
    } finally {
      await badRt.queue.obliterate({ force: true }).catch(() => {});
      await badRt.close();
    }
    const malformed = path.join(dir, 'malformed.yaml');
    await writeFile(
      malformed,
      'name: e2e\nclusters:\n  - { id: c1 }\nregistries:\n  - { registryId: nope, region: ap-guangzhou, clusters: [c9] }\n',
    );
    expect(() =>
      buildFunctionsRuntime(parseEnv(FunctionsEnv, { FLEET_FILE: malformed }), {
        log: createLogger('functions', 'silent'),
      }),
    ).toThrow(
      /clusters\[0\] \(c1\): needs exactly one of kubeconfig or tke.*registries\[0\] \(nope\)\.registryId: must be a TCR instance id.*registries\[0\] \(nope\)\.clusters\[0\]: unknown cluster "c9"/,
    );
    expect((await storedToken('c1'))?.token).toBe(good.token);
  });

  it('no token or SecretKey appears in logs, Redis, audit entries or events', async () => {
    await storedToken('c1');
    const secrets = [...issuedTokens, SECRET_KEY, WRONG_KEY].filter((s) => s.length > 8);
    expect(issuedTokens.size).toBeGreaterThanOrEqual(4);
    const haystacks: [string, string][] = [['logs', logs.text]];
    const prefix = rt.env.QUEUE_PREFIX;
    for (const key of await rt.redis.keys(`${prefix}*`)) {
      const type = await rt.redis.type(key);
      const value =
        type === 'string'
          ? await rt.redis.get(key)
          : type === 'hash'
            ? await rt.redis.hgetall(key)
            : type === 'list'
              ? await rt.redis.lrange(key, 0, -1)
              : type === 'set'
                ? await rt.redis.smembers(key)
                : type === 'zset'
                  ? await rt.redis.zrange(key, '0', '-1')
                  : type === 'stream'
                    ? await rt.redis.xrange(key, '-', '+')
                    : '';
      haystacks.push([`redis ${key}`, JSON.stringify(value)]);
    }
    haystacks.push(['audit', JSON.stringify(await listAudit(rt.redis, rt.auditKey, {}, 100_000))]);
    for (const id of IDS) {
      const events = await core(id).listEventForAllNamespaces();
      haystacks.push([`events ${id}`, JSON.stringify(events.items)]);
    }
    expect(haystacks.length).toBeGreaterThan(5);
    for (const [where, text] of haystacks) {
      for (const secret of secrets)
        expect(text.includes(secret), `${where} must not contain a credential`).toBe(false);
    }
  });
});
