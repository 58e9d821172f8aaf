// `npm run bench -- --fleet [--clusters 10] [--namespaces 1000] [--redis cluster|single] [--workers 16]`: one
// rotation of a registry token shared by a fleet of local control planes (started without a node), through
// the fleet refresher: how many tokens it mints (must be 1), how long until every Secret in every cluster
// carries the new one, and what that costs each cluster (API requests by verb, time) and Redis (commands per
// node). Writes bench/results/fleet-<date>.json and .md. Not part of the test command.
//
// What runs is what a fleet runs: one functions deployment (BullMQ workers, the refresher) serving every
// cluster through a fleet file, on one Redis (by default a real Redis Cluster, 3 primaries + 3 replicas), the
// Tencent Cloud API emulator issuing the token. No relay: the refresher enqueues the CR jobs of each cluster
// itself, which is the whole path a rotation takes (the relays of a real fleet watch Namespaces,
// ServiceAccounts and CRs, none of which a rotation touches).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { listAudit } from '../functions/adapters/audit-reader.js';
import { tokenSecretName } from '../functions/core/registry-tokens/token-store.js';
import { buildFunctionsRuntime } from '../functions/runtime/build-runtime.js';
import { startWorker } from '../functions/runtime/worker.js';
import { type ControlPlane, startControlPlane } from '../infra/local/control-plane.js';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { FUNCTIONS_SERVICE_ACCOUNT, REPO_ROOT, SYSTEM_NAMESPACE } from '../infra/local/paths.js';
import { type LocalRedis, startRedis } from '../infra/local/redis.js';
import { type LocalRedisCluster, startRedisCluster } from '../infra/local/redis-cluster.js';
import { installCrdAndRbac } from '../infra/local/stack.js';
import { startTencentEmulator } from '../infra/tencent-emulator/server.js';
import { FunctionsEnv, parseEnv } from '../shared/config.js';
import { REGISTRY_TOKENS_KEY } from '../shared/contracts/jobs.js';
import { secretNameFor } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import { createLogger } from '../shared/logging.js';
import { enqueueJobs } from '../shared/queue.js';
import { diffTotals, parseRequestTotals, runPool, waitQueueIdle } from './observe.js';

const { values } = parseArgs({
  options: {
    fleet: { type: 'boolean', default: true },
    clusters: { type: 'string', default: '10' },
    namespaces: { type: 'string', default: '1000' },
    redis: { type: 'string', default: 'cluster' },
    workers: { type: 'string', default: '16' },
    // Control planes started at once (each start is CPU-heavy for a few seconds).
    'start-batch': { type: 'string', default: '3' },
  },
});
const K = Number(values.clusters);
const N = Number(values.namespaces);
const workers = Number(values.workers);
if (!(K >= 1) || !(N >= 1)) throw new Error('--clusters and --namespaces must be positive numbers');
if (values.redis !== 'cluster' && values.redis !== 'single')
  throw new Error('--redis must be cluster or single');

const REGISTRY = 'tcr-fleetbench';
const REGION = 'ap-guangzhou';
const SERVER = 'fleet-bench.tencentcloudcr.com';
const CR = 'fleet-app';
const SECRET = secretNameFor(CR);
const LABEL = { 'bench-fleet': 'yes' };
const t = () => new Date().toISOString().slice(11, 19);
const log = (m: string) => console.log(`[fleet ${t()}] ${m}`);
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS (MiB) and CPU seconds of every process whose command line names `dir` (a control plane's folder). */
function processesUnder(dir: string): { rssMiB: number; cpuSeconds: number; count: number } {
  let rssKb = 0;
  let ticks = 0;
  let count = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(dir) || cmd.startsWith('bash')) continue;
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      count++;
    } catch {
      // gone meanwhile
    }
  }
  return { rssMiB: +(rssKb / 1024).toFixed(1), cpuSeconds: ticks / 100, count };
}

/** Commands each Redis node has processed so far (INFO stats), by port, asked of each node directly. */
async function redisCommands(ports: readonly number[]): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const port of ports) {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
    r.on('error', () => {});
    try {
      await r.connect();
      const info = await r.info('stats');
      out[port] = Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
    } catch {
      out[port] = Number.NaN;
    } finally {
      r.disconnect();
    }
  }
  return out;
}

/** The password each Secret `SECRET` carries, per namespace, from one watch (its initial ADDED events included). */
class SecretCarry {
  readonly password = new Map<string, string>();
  private controller: AbortController | undefined;
  private stopped = false;
  watches = 0;

  constructor(private readonly kc: KubeConfig) {}

  start(): void {
    const loop = async () => {
      while (!this.stopped) {
        await new Promise<void>((resolve) => {
          this.watches++;
          new Watch(this.kc)
            .watch(
              '/api/v1/secrets',
              { fieldSelector: `metadata.name=${SECRET}` },
              (type: string, s: { metadata?: { namespace?: string }; data?: Record<string, string> }) => {
                const ns = s.metadata?.namespace ?? '';
                if (type === 'DELETED') {
                  this.password.delete(ns);
                  return;
                }
                try {
                  const config = JSON.parse(
                    Buffer.from(s.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'),
                  ) as { auths?: Record<string, { password?: string }> };
                  this.password.set(ns, config.auths?.[SERVER]?.password ?? '');
                } catch {
                  this.password.set(ns, '');
                }
              },
              () => resolve(),
            )
            .then(
              (c) => {
                this.controller = c;
              },
              () => resolve(),
            );
        });
        if (!this.stopped) await sleep(200);
      }
    };
    void loop();
  }

  carrying(token: string): number {
    let n = 0;
    for (const p of this.password.values()) if (p === token) n++;
    return n;
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }
}

const started = Date.now();
const loadBefore = uptime();
log(`uptime before: ${loadBefore}`);
const work = mkdtempSync(path.join(os.tmpdir(), 'tcr-fleet-bench-'));
const planes: ControlPlane[] = [];
let redis: LocalRedis | LocalRedisCluster | undefined;
let emulatorStop: (() => Promise<void>) | undefined;
const cleanup = async () => {
  await Promise.allSettled(planes.map((p) => p.stop()));
  await redis?.stop();
  await emulatorStop?.();
  rmSync(work, { recursive: true, force: true });
};

try {
  // --- Redis, emulator, K control planes ---
  redis = values.redis === 'cluster' ? await startRedisCluster() : await startRedis();
  const redisPorts = 'ports' in redis ? [...redis.ports] : [redis.port];
  const apiKey = {
    secretId: `AKIDFLEET${randomBytes(8).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(24).toString('hex'),
  };
  const emulator = await startTencentEmulator({
    credentials: [apiKey],
    registries: [{ registryId: REGISTRY, region: REGION }],
  });
  emulatorStop = () => emulator.stop();
  const ids = Array.from({ length: K }, (_, i) => `c${i + 1}`);
  const batch = Number(values['start-batch']);
  for (let i = 0; i < K; i += batch) {
    const started = await Promise.all(
      ids.slice(i, i + batch).map((id) => startControlPlane({ name: `fleet-${id}` })),
    );
    planes.push(...started);
    log(`control planes up: ${planes.length}/${K}`);
  }
  const admin = planes.map((p) => {
    const kc = new KubeConfig();
    kc.loadFromFile(p.kubeconfigPath);
    return shareConnections(kc);
  });
  await Promise.all(
    // No relay runs in the fleet figure: only the functions' RBAC.
    admin.map((kc) => installCrdAndRbac(kc, { relay: false })),
  );

  // --- the functions: one deployment for the fleet, as its ServiceAccount in every cluster ---
  const user = `system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`;
  const fleetLines = ['name: bench-fleet', 'clusters:'];
  for (const [i, p] of planes.entries()) {
    const file = await p.kubeconfigAs(user);
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    fleetLines.push(
      `  - { id: ${ids[i]}, kubeconfig: { path: ${JSON.stringify(file)}, context: ${JSON.stringify(kc.currentContext)} } }`,
    );
  }
  fleetLines.push(
    'registries:',
    `  - { registryId: ${REGISTRY}, region: ${REGION}, tokenType: longterm, clusters: ["*"] }`,
  );
  const fleetFile = path.join(work, 'fleet.yaml');
  writeFileSync(fleetFile, `${fleetLines.join('\n')}\n`);
  const env = parseEnv(FunctionsEnv, {
    REDIS_URL: redis.url,
    CLUSTER_ID: 'c1',
    FLEET_FILE: fleetFile,
    WORKER_CONCURRENCY: String(workers),
    STATUS_DELAY_MS: '5000',
    LOG_LEVEL: 'warn',
  });
  const rt = buildFunctionsRuntime(env, {
    log: createLogger('functions', 'warn'),
    tencentEnv: {
      TENCENTCLOUD_SECRET_ID: apiKey.secretId,
      TENCENTCLOUD_SECRET_KEY: apiKey.secretKey,
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
      TENCENTCLOUD_TIMEOUT_SECONDS: 10,
    },
  });
  const worker = startWorker(rt);
  await worker.waitUntilReady();

  // --- N namespaces per cluster, their `default` ServiceAccounts, then the CR (spec.tcr) in each ---
  const names = Array.from({ length: N }, (_, i) => `fleet-${i}`);
  const setup0 = Date.now();
  await Promise.all(
    admin.map((kc) =>
      runPool(names, 8, async (name) => {
        await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: LABEL } } });
      }),
    ),
  );
  log(
    `${K} × ${N} namespaces created in ${Date.now() - setup0} ms; waiting for their default ServiceAccounts`,
  );
  await Promise.all(
    admin.map(async (kc) => {
      for (;;) {
        const sas = await kc
          .makeApiClient(CoreV1Api)
          .listServiceAccountForAllNamespaces({ fieldSelector: 'metadata.name=default' });
        if (sas.items.filter((s) => s.metadata?.namespace?.startsWith('fleet-')).length >= N) return;
        await sleep(2000);
      }
    }),
  );
  const carry = admin.map((kc) => new SecretCarry(kc));
  for (const c of carry) c.start();
  for (const kc of admin) {
    await createImagePullSecret(kc, CR, {
      namespaces: '*',
      serviceAccounts: 'default',
      namespaceSelector: { matchLabels: LABEL },
      docker: { server: SERVER },
      tcr: { registryId: REGISTRY, region: REGION, tokenType: 'longterm' },
    });
  }
  const readToken = async (kc: KubeConfig) => {
    try {
      const s = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({
        namespace: SYSTEM_NAMESPACE,
        name: tokenSecretName(`${REGISTRY}.longterm`),
      });
      return Buffer.from(s.data?.token ?? '', 'base64').toString('utf8');
    } catch {
      return undefined;
    }
  };
  /** Waits until every cluster's Secrets carry `token`; the time (ms after `from`) each cluster got there. */
  const waitCarry = async (token: string, from: number) => {
    const doneAt: (number | undefined)[] = ids.map(() => undefined);
    while (doneAt.some((d) => d === undefined)) {
      for (const [i, c] of carry.entries()) {
        if (doneAt[i] === undefined && c.carrying(token) >= N) doneAt[i] = Date.now() - from;
      }
      if (Date.now() - from > 1_800_000) throw new Error('not every Secret carries the token after 30 min');
      await sleep(50);
    }
    return doneAt as number[];
  };

  // What the relays do when they see the new CRs: one CR job per cluster (its fan-out asks for the token).
  const init0 = Date.now();
  await enqueueJobs(
    rt.queue,
    ids.map((id) => ({ key: { cluster: id, kind: 'imagepullsecret', name: CR }, trigger: 'added' })),
  );
  let first: string | undefined;
  while (!first) {
    first = await readToken(admin[0] as KubeConfig);
    if (!first) await sleep(100);
  }
  const initial = await waitCarry(first, init0);
  log(
    `initial: ${K} × ${N} Secrets carry the first token ${Math.max(...initial)} ms after the CR jobs were queued`,
  );
  await waitQueueIdle(rt.queue);
  const mintsInitial = emulator.calls('CreateInstanceToken');

  // --- a quiet window: what the fleet costs when nothing happens (per control plane) ---
  const quietMs = 20_000;
  const idle0 = planes.map((p) => processesUnder(p.dir));
  const redisIdle0 = await redisCommands(redisPorts);
  const apiIdle0 = await Promise.all(
    planes.map(async (p) => parseRequestTotals((await p.get('/metrics')).body)),
  );
  await sleep(quietMs);
  const idle1 = planes.map((p) => processesUnder(p.dir));
  const redisIdle1 = await redisCommands(redisPorts);
  const redisIdlePerSecond = +(
    redisPorts.reduce((sum, port) => sum + (redisIdle1[port] ?? 0) - (redisIdle0[port] ?? 0), 0) /
    (quietMs / 1000)
  ).toFixed(1);
  const apiIdle1 = await Promise.all(
    planes.map(async (p) => parseRequestTotals((await p.get('/metrics')).body)),
  );
  const idleCpuPerPlane = idle1.map(
    (s, i) => +((s.cpuSeconds - (idle0[i]?.cpuSeconds ?? 0)) / (quietMs / 1000)).toFixed(3),
  );
  const idleRequestsPerSecond = apiIdle1.map(
    (a, i) =>
      +(
        Object.values(diffTotals(a, apiIdle0[i] as Map<string, number>)).reduce((x, y) => x + y, 0) /
        (quietMs / 1000)
      ).toFixed(2),
  );

  // --- the rotation ---
  const ownRequests = async () => {
    const out = new Map<string, number>();
    for (const v of (await rt.metrics.requests.get()).values) {
      const k = `${String(v.labels.verb).toUpperCase()} ${v.labels.resource}`;
      out.set(k, (out.get(k) ?? 0) + v.value);
    }
    return out;
  };
  const own0 = await ownRequests();
  const api0 = await Promise.all(planes.map(async (p) => parseRequestTotals((await p.get('/metrics')).body)));
  const cpu0 = planes.map((p) => processesUnder(p.dir));
  const redis0 = await redisCommands(redisPorts);
  const mints0 = emulator.calls('CreateInstanceToken');
  const functionsCpu0 = process.cpuUsage();
  const loadAtRotation = os.loadavg().map((l) => +l.toFixed(2));
  const r0 = Date.now();
  await rt.tokenReports.requestRotation([REGISTRY]);
  await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'cli' }]);
  let second: string | undefined;
  while (!second || second === first) {
    second = await readToken(admin[0] as KubeConfig);
    if (!second || second === first) await sleep(100);
  }
  const tokenStoredMs = Date.now() - r0;
  const carried = await waitCarry(second, r0);
  const everywhereMs = Math.max(...carried);
  log(
    `rotation: every Secret in ${K} clusters carries the new token ${everywhereMs} ms after it was asked for`,
  );
  await waitQueueIdle(rt.queue);
  const settledMs = Date.now() - r0;
  const api1 = await Promise.all(planes.map(async (p) => parseRequestTotals((await p.get('/metrics')).body)));
  const cpu1 = planes.map((p) => processesUnder(p.dir));
  const redis1 = await redisCommands(redisPorts);
  const functionsCpu = process.cpuUsage(functionsCpu0);
  // The functions' own requests (their client metrics, all clusters), per cluster: the API servers' counts
  // above also hold the controller-manager's (its garbage collector reads owners and dependents of updated
  // Secrets) and the benchmark's one watch per cluster.
  const ownPerCluster = Object.fromEntries(
    Object.entries(diffTotals(await ownRequests(), own0)).map(([k, v]) => [k, +(v / K).toFixed(1)]),
  );
  const mints = emulator.calls('CreateInstanceToken') - mints0;
  // Jobs the rotation ran (the audit stream: one entry per processed job), by kind, trigger and outcome.
  const jobs: Record<string, number> = {};
  const jobMs: Record<string, number[]> = {};
  for (const e of await listAudit(rt.redis, rt.auditKey, { since: r0 }, 1_000_000)) {
    const k = `${e.kind} (${e.trigger}) ${e.outcome}`;
    jobs[k] = (jobs[k] ?? 0) + 1;
    jobMs[e.kind] = [...(jobMs[e.kind] ?? []), e.durationMs];
  }
  const jobDurationsMs = Object.fromEntries(
    Object.entries(jobMs).map(([kind, ms]) => [
      kind,
      { min: Math.min(...ms), max: Math.max(...ms), total: ms.reduce((a, b) => a + b, 0) },
    ]),
  );
  const ours =
    /^(GET|LIST|POST|PUT|PATCH|DELETE) (secrets|serviceaccounts|imagepullsecrets|namespaces|events)/;
  const perCluster = ids.map((id, i) => {
    const requests = diffTotals(api1[i] as Map<string, number>, api0[i] as Map<string, number>);
    const oursOnly = Object.fromEntries(Object.entries(requests).filter(([k]) => ours.test(k)));
    return {
      cluster: id,
      secretsCarryingMs: carried[i],
      requests: oursOnly,
      requestCount: Object.values(oursOnly).reduce((a, b) => a + b, 0),
      allRequests: Object.values(requests).reduce((a, b) => a + b, 0),
      controlPlaneCpuSeconds: +((cpu1[i]?.cpuSeconds ?? 0) - (cpu0[i]?.cpuSeconds ?? 0)).toFixed(2),
      controlPlaneRssMiB: cpu1[i]?.rssMiB,
      idleCpuCores: idleCpuPerPlane[i],
      idleRequestsPerSecond: idleRequestsPerSecond[i],
    };
  });
  const redisPerNode = Object.fromEntries(
    redisPorts.map((port) => [port, (redis1[port] ?? 0) - (redis0[port] ?? 0)]),
  );
  const queuePrimary =
    'primaryFor' in redis ? (await redis.primaryFor(env.QUEUE_PREFIX)).port : redisPorts[0];
  const loadAfter = uptime();
  log(`uptime after: ${loadAfter}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const results = {
    date: new Date().toISOString(),
    scenario: 'fleet rotation',
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    },
    versions: {
      node: process.version,
      kubernetes: JSON.parse((await planes[0]!.get('/version')).body).gitVersion as string,
      redis: redis.version,
    },
    uptimeBefore: loadBefore,
    uptimeAfter: loadAfter,
    loadAtRotation,
    clusters: K,
    namespacesPerCluster: N,
    redis: values.redis === 'cluster' ? '3 primaries + 3 replicas (Redis Cluster)' : 'one redis-server',
    workers,
    setup: { initialConvergenceMs: Math.max(...initial), mintsForFirstToken: mintsInitial },
    rotation: {
      mints,
      tokenStoredInFirstClusterMs: tokenStoredMs,
      everySecretCarriesMs: everywhereMs,
      settledMs,
      perClusterCarriesMs: { min: Math.min(...carried), mean: Math.round(mean(carried)), max: everywhereMs },
      jobs,
      jobDurationsMs,
      functionsCpuSeconds: +((functionsCpu.user + functionsCpu.system) / 1e6).toFixed(2),
      functionsRssMiB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1),
      redisCommandsPerNode: redisPerNode,
      redisQueuePrimary: queuePrimary,
      redisCommandsTotal: Object.values(redisPerNode).reduce((a, b) => a + b, 0),
      // Idle workers poll (blocking reads on the queue's marker, stalled-job checks), and the benchmark's own
      // queue-idle checks add a few: what a quiet fleet costs per second, for the rotation's net cost.
      redisCommandsIdlePerSecond: redisIdlePerSecond,
      functionsRequestsPerCluster: ownPerCluster,
      apiRequestsPerCluster: {
        mean: Math.round(mean(perCluster.map((c) => c.requestCount))),
        max: Math.max(...perCluster.map((c) => c.requestCount)),
      },
    },
    perCluster,
    footprint: {
      controlPlaneRssMiB: Math.round(mean(perCluster.map((c) => c.controlPlaneRssMiB ?? 0))),
      idleCpuCoresPerPlane: +mean(idleCpuPerPlane).toFixed(3),
      idleApiRequestsPerSecondPerPlane: +mean(idleRequestsPerSecond).toFixed(2),
      machineMemoryAvailableGiB: +(os.freemem() / 2 ** 30).toFixed(1),
    },
    benchSeconds: Math.round((Date.now() - started) / 1000),
  };
  for (const c of carry) c.stop();
  await worker.close();
  await rt.close();

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = `fleet-${results.date.slice(0, 19).replace(/[:T]/g, '-')}`;
  writeFileSync(path.join(dir, `${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const table = renderFleetTable(results);
  writeFileSync(path.join(dir, `${stamp}.md`), table);
  console.log(table);
} finally {
  await cleanup();
}
process.exit(0);

// biome-ignore lint/suspicious/noExplicitAny: the results object above
function renderFleetTable(r: Record<string, any>): string {
  const rot = r.rotation;
  const verbs = new Map<string, number>();
  for (const c of r.perCluster)
    for (const [k, v] of Object.entries(c.requests)) verbs.set(k, (verbs.get(k) ?? 0) + (v as number));
  const perVerb = [...verbs]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${+(v / r.clusters).toFixed(1)}`)
    .join(', ');
  const lines = [
    `Fleet benchmark ${r.date} — ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.versions.node}, Kubernetes ${r.versions.kubernetes}, Redis ${r.versions.redis} (${r.redis}), ${r.workers} workers`,
    '',
    `Machine load (other work shares it): before \`${r.uptimeBefore}\`; at the rotation ${r.loadAtRotation.join(' ')}; after \`${r.uptimeAfter}\``,
    '',
    '| clusters × namespaces | mints (must be 1) | token stored (first cluster) | every Secret carries it | per cluster: carries (min / mean / max) | settled (queue idle) | API requests per cluster (our resources) | jobs | Redis commands (queue primary / all nodes) | functions CPU |',
    '|---|---|---|---|---|---|---|---|---|---|',
    `| ${r.clusters} × ${r.namespacesPerCluster} | ${rot.mints} | ${(rot.tokenStoredInFirstClusterMs / 1000).toFixed(2)} s | ${(rot.everySecretCarriesMs / 1000).toFixed(1)} s | ${(rot.perClusterCarriesMs.min / 1000).toFixed(1)} / ${(rot.perClusterCarriesMs.mean / 1000).toFixed(1)} / ${(rot.perClusterCarriesMs.max / 1000).toFixed(1)} s | ${(rot.settledMs / 1000).toFixed(1)} s | ${rot.apiRequestsPerCluster.mean} (max ${rot.apiRequestsPerCluster.max}) | ${Object.entries(
      rot.jobs,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )} | ${rot.redisCommandsPerNode[rot.redisQueuePrimary]} / ${rot.redisCommandsTotal} (idle ${rot.redisCommandsIdlePerSecond}/s) | ${rot.functionsCpuSeconds} s |`,
    '',
    `Job durations (ms): ${Object.entries(rot.jobDurationsMs as Record<string, { min: number; max: number }>)
      .map(([k, d]) => `${k} ${d.min}–${d.max}`)
      .join(', ')}`,
    '',
    `API requests per cluster by verb (mean, API server's count of every client): ${perVerb}`,
    '',
    `Of which the functions' own (their client metrics, per cluster): ${Object.entries(
      rot.functionsRequestsPerCluster,
    )
      .sort((a, b) => (b[1] as number) - (a[1] as number))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    `Per control plane: ${r.footprint.controlPlaneRssMiB} MiB RSS (etcd + kube-apiserver + kube-controller-manager at ${r.namespacesPerCluster} namespaces), idle ${r.footprint.idleCpuCoresPerPlane} cores and ${r.footprint.idleApiRequestsPerSecondPerPlane} API requests/s (its own controllers); functions process ${rot.functionsRssMiB} MiB RSS; first token and ${r.clusters * r.namespacesPerCluster} Secrets in ${(r.setup.initialConvergenceMs / 1000).toFixed(1)} s (mints: ${r.setup.mintsForFirstToken}).`,
    '',
    '| cluster | carries (s) | API requests (ours) | all API requests | control-plane CPU (s) | RSS (MiB) |',
    '|---|---|---|---|---|---|',
    ...r.perCluster.map(
      // biome-ignore lint/suspicious/noExplicitAny: see above
      (c: any) =>
        `| ${c.cluster} | ${(c.secretsCarryingMs / 1000).toFixed(1)} | ${c.requestCount} | ${c.allRequests} | ${c.controlPlaneCpuSeconds} | ${c.controlPlaneRssMiB} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
