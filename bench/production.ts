// The production-shaped scenario (`npm run bench -- --production`): every component as its own process
// running the image's bundle as the image runs it (`node dist/image/<x>.cjs`, the chart's NODE_OPTIONS), each
// as its own ServiceAccount, on a control plane of its own whose API server keeps an audit log. It measures
// what only separate processes can show:
//   - low load: a few namespaces a second, create sent → converged, with the hops of each namespace's job;
//   - footprint: the relay's and the worker's RSS at N namespaces + N ServiceAccounts (and their peaks on the
//     way there), sampled from /proc;
//   - idle: after convergence, the CPU the relay and the worker burn and the API requests our identities make
//     per second, from the API server's own counts (bench/identities.ts), with the audit log's breakdown.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { startControlPlane } from '../infra/local/control-plane.js';
import { findFreePort } from '../infra/local/free-port.js';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import {
  FUNCTIONS_SERVICE_ACCOUNT,
  RELAY_SERVICE_ACCOUNT,
  REPO_ROOT,
  SYSTEM_NAMESPACE,
} from '../infra/local/paths.js';
import { type ManagedProcess, startProcess, waitUntilReady } from '../infra/local/processes.js';
import { startRedis } from '../infra/local/redis.js';
import { installCrdAndRbac } from '../infra/local/stack.js';
import { startLocalWebhook } from '../infra/local/webhook.js';
import { QUEUE_NAME } from '../shared/contracts/jobs.js';
import { secretNameFor } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import { connectRedis, enqueueJobs, openQueue } from '../shared/queue.js';
import { apiserverWebhookHistogram, describeStreamAdmission, readWebhookSelf } from './admission.js';
import {
  auditArgs,
  countAuditRequests,
  diffIdentityCounts,
  installIdentityFlowSchemas,
  parseIdentityCounts,
  readAuditCounts,
  readAuditLines,
  totalOf,
} from './identities.js';
import { type LatencyResult, streamNamespaces } from './latency.js';
import { describeNamespacePaths, summarizeNamespacePaths } from './namespace-path.js';
import { diffTotals, parseRequestTotals, runPool, ServiceAccountObserver, waitQueueIdle } from './observe.js';

/** The chart's NODE_OPTIONS, read from its values (relay.nodeOptions, worker.nodeOptions), and the relay's
 * flags on node's command line (relay.nodeFlags: V8 flags NODE_OPTIONS refuses). */
const chartValues = parseYaml(
  readFileSync(path.join(REPO_ROOT, 'infra', 'helm', 'tcr-assistant', 'values.yaml'), 'utf8'),
) as {
  relay: { nodeOptions: string; nodeFlags?: string[] };
  worker: { nodeOptions: string; mallocEnv?: Record<string, string> | null };
};
const RELAY_NODE_OPTIONS = chartValues.relay.nodeOptions;
const RELAY_NODE_FLAGS = chartValues.relay.nodeFlags ?? [];
const WORKER_NODE_OPTIONS = process.env.BENCH_WORKER_NODE_OPTIONS ?? chartValues.worker.nodeOptions;
/** The worker's environment from the chart (worker.mallocEnv); a diagnostic run adds or overrides variables
 * with BENCH_WORKER_ENV='K=V K=V' (e.g. other malloc tunables), to measure them before the chart sets them. */
const WORKER_EXTRA_ENV: Record<string, string> = {
  ...chartValues.worker.mallocEnv,
  ...Object.fromEntries(
    (process.env.BENCH_WORKER_ENV?.split(' ').filter(Boolean) ?? []).map(
      (kv) => kv.split('=', 2) as [string, string],
    ),
  ),
};
const BUNDLES = path.join(REPO_ROOT, 'dist', 'image');
/** A diagnostic run: BENCH_CPU_PROF_DIR=<dir> gives the relay and the worker `node --cpu-prof` (profiles on exit). */
const profileArgs = [
  ...(process.env.BENCH_CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
    : []),
  // Diagnostic runs too: e.g. BENCH_NODE_ARGS=--trace-gc (each process's log in the control plane's folder).
  ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
];

export interface ProductionOptions {
  namespaces: number;
  lowRate: number;
  lowDurationSeconds: number;
  idleSeconds: number;
  controllerManagerQps?: number | undefined;
  webhook: boolean;
  /** A second relay replica standing by (the chart runs 2). */
  standby: boolean;
  concurrency: number;
  log: (m: string) => void;
}

interface ProcStats {
  rssMiB: number;
  cpuSeconds: number;
}

/** CPU seconds by thread name (the main thread is `node`; GC helpers `V8 DefaultWorke`; libuv's pool). */
function threadCpu(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName[name] = (byName[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssMiB: +(rssKb / 1024).toFixed(1), cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

/**
 * CPU seconds so far of every process of the run: ours (by role), the control plane's (by program, found by
 * its folder in their command lines) and Redis (by its port). What was busy during a stream is the difference.
 */
function cpuOfRun(ours: Record<string, number>, cpDir: string, redisPort: number): Record<string, number> {
  const cpu: Record<string, number> = {};
  for (const [k, pid] of Object.entries(ours)) {
    try {
      cpu[k] = procStats(pid).cpuSeconds;
    } catch {
      // gone; its log says why
    }
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const program = path.basename(argv[0] ?? '');
      const isOurs =
        (argv.some((a) => a.includes(cpDir)) && program.startsWith('kube')) ||
        (argv.some((a) => a.includes(cpDir)) && program === 'etcd') ||
        (program === 'redis-server' && argv.some((a) => a.endsWith(`:${redisPort}`)));
      if (isOurs) cpu[program] = (cpu[program] ?? 0) + procStats(Number(entry)).cpuSeconds;
    } catch {
      // ended meanwhile, or not ours to read
    }
  }
  return cpu;
}

/** The program a supervised process runs (its supervisor is a bash). */
function programPid(proc: ManagedProcess): number {
  const supervisor = proc.child.pid as number;
  const children = readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(' ');
  if (!children[0]) throw new Error(`${proc.name}: no program under its supervisor`);
  return Number(children[0]);
}

async function httpText(port: number, p: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(2000) });
  return { status: r.status, text: await r.text() };
}

export async function benchProduction(opts: ProductionOptions) {
  const { log } = opts;
  const auditDir = mkdtempSync(path.join(os.tmpdir(), 'tcr-bench-audit-'));
  const audit = auditArgs(auditDir);
  const cp = await startControlPlane({
    name: 'production',
    controllerManagerQps: opts.controllerManagerQps,
    extraApiserverArgs: audit.args,
  });
  const redis = await startRedis();
  const admin = new KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  const core = shareConnections(admin).makeApiClient(CoreV1Api);
  await installCrdAndRbac(admin);
  await installIdentityFlowSchemas(admin);
  const metrics = async () => (await cp.get('/metrics')).body;
  const versions = {
    kubernetes: JSON.parse((await cp.get('/version')).body).gitVersion as string,
    redis: redis.version,
  };

  // --- the floor: the same stream on the control plane alone, before anything of ours runs ---
  // A namespace is done when the controller-manager's `default` ServiceAccount exists. Our low-load target
  // (p99 ≤ 60 ms) sits close to this floor: NamespaceLifecycle's 50 ms wait strikes a few namespaces of every
  // stream with or without us (bench/results/namespace-wait-2026-11-29-19-51.md). These namespaces carry no
  // label our CR selects, so they cost ours nothing later.
  const floorLowLoad = await (async () => {
    const prefix = 'floor';
    const r = await streamNamespaces({
      admin,
      rate: opts.lowRate,
      durationSeconds: opts.lowDurationSeconds,
      prefix,
      labels: {},
    });
    await new Promise((res) => setTimeout(res, 3000));
    const apiServerClock = summarizeNamespacePaths(
      readAuditLines(audit.logFile),
      new Set(Array.from({ length: r.namespaces }, (_, i) => `${prefix}-${i}`)),
      '-',
      r.clientTimes,
    );
    log(`production ${prefix}: ${JSON.stringify(r.createdToConverged)}`);
    if (apiServerClock) log(`production ${prefix}: ${describeNamespacePaths(apiServerClock)}`);
    return Object.assign(r, { apiServerClock });
  })();

  const webhook = opts.webhook
    ? await startLocalWebhook(cp, admin, { LOG_LEVEL: 'warn' }, path.join(BUNDLES, 'webhook.cjs'))
    : undefined;
  const startRelay = async (podName: string) => {
    const port = await findFreePort();
    const proc = startProcess({
      name: podName,
      command: process.execPath,
      args: [...profileArgs, ...RELAY_NODE_FLAGS, path.join(BUNDLES, 'relay.cjs')],
      logFile: path.join(cp.dir, `${podName}.log`),
      env: {
        ...process.env,
        KUBECONFIG: await cp.kubeconfigAs(
          `system:serviceaccount:${SYSTEM_NAMESPACE}:${RELAY_SERVICE_ACCOUNT}`,
        ),
        REDIS_URL: redis.url,
        CLUSTER_ID: 'bench',
        QUEUE_PREFIX: '{tcr}',
        HTTP_PORT: String(port),
        LOG_LEVEL: 'warn',
        NODE_OPTIONS: RELAY_NODE_OPTIONS,
        POD_NAME: podName,
        LEASE_NAMESPACE: SYSTEM_NAMESPACE,
        LEASE_NAME: 'tcr-assistant-relay',
        LEASE_DURATION_MS: '30000', // the chart's leaseDurationSeconds
        RESYNC_PERIOD_MS: '600000',
      },
    });
    return { proc, port };
  };
  const relay = await startRelay('relay-0');
  await waitUntilReady(
    relay.proc,
    async () => (await httpText(relay.port, '/readyz')).text === 'leading',
    120_000,
    'leading',
  );
  const standby = opts.standby ? await startRelay('relay-1') : undefined;
  if (standby)
    await waitUntilReady(
      standby.proc,
      async () => (await httpText(standby.port, '/healthz')).status === 200,
      60_000,
      'healthz',
    );
  const workerPort = await findFreePort();
  const worker = startProcess({
    name: 'worker',
    command: process.execPath,
    args: [...profileArgs, path.join(BUNDLES, 'functions.cjs'), 'worker'],
    logFile: path.join(cp.dir, 'worker.log'),
    env: {
      ...process.env,
      KUBECONFIG: await cp.kubeconfigAs(
        `system:serviceaccount:${SYSTEM_NAMESPACE}:${FUNCTIONS_SERVICE_ACCOUNT}`,
      ),
      REDIS_URL: redis.url,
      CLUSTER_ID: 'bench',
      QUEUE_PREFIX: '{tcr}',
      METRICS_PORT: String(workerPort),
      WORKER_CONCURRENCY: '16',
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: WORKER_NODE_OPTIONS,
      ADOPT_ADDON_SECRETS: 'false',
      ...WORKER_EXTRA_ENV,
    },
  });
  await waitUntilReady(
    worker,
    async () => (await httpText(workerPort, '/readyz')).status === 200,
    120_000,
    'ready',
  );
  const pids: Record<string, number> = {
    relay: programPid(relay.proc),
    worker: programPid(worker),
    ...(standby ? { relayStandby: programPid(standby.proc) } : {}),
    ...(webhook ? { webhook: programPid(webhook.process) } : {}),
  };
  const queue = openQueue(connectRedis(redis.url), { prefix: '{tcr}', attempts: 1, backoffMs: 1000 });
  if (queue.name !== QUEUE_NAME) throw new Error(`queue ${queue.name} is not ${QUEUE_NAME}`);

  // RSS of every process once a second (the chart: RSS over time; the peaks).
  const t0 = performance.now();
  const rss: Record<string, [number, number][]> = Object.fromEntries(Object.keys(pids).map((k) => [k, []]));
  const sample = () => {
    const at = (performance.now() - t0) / 1000;
    for (const [k, pid] of Object.entries(pids)) {
      try {
        rss[k]?.push([at, procStats(pid).rssMiB]);
      } catch {
        // the process is gone; its log says why
      }
    }
  };
  const sampler = setInterval(sample, 1000);
  const maxRss = (k: string, from = 0, to = Number.POSITIVE_INFINITY) =>
    Math.max(0, ...(rss[k] ?? []).filter(([t]) => t >= from && t <= to).map(([, v]) => v));

  const crName = 'bench';
  const secret = secretNameFor(crName);
  const labels = { 'bench-owner': 'tcr-assistant' };
  await createImagePullSecret(admin, crName, {
    namespaces: '*',
    serviceAccounts: '*',
    namespaceSelector: { matchLabels: labels },
    docker: { server: 'bench.tencentcloudcr.com', username: 'bench', password: 'v1' },
  });
  await waitQueueIdle(queue);
  log(
    `production: stack up (${Object.entries(pids)
      .map(([k, v]) => `${k} pid ${v}`)
      .join(', ')})`,
  );

  // --- low load on a small cluster ---
  /** Our webhook during a stream: the API server's view of its calls, its own, and its waits for a namespace. */
  const webhookSnapshot = async (apiMetrics: string) =>
    webhook ? { api: apiserverWebhookHistogram(apiMetrics), ...(await readWebhookSelf(webhook)) } : undefined;
  const lowLoad = async (prefix: string): Promise<LatencyResult> => {
    const beforeMetrics = await metrics();
    const before = parseIdentityCounts(beforeMetrics);
    const webhookBefore = await webhookSnapshot(beforeMetrics);
    const cpuBefore = cpuOfRun(pids, cp.dir, redis.port);
    const from = Date.now();
    const r = await streamNamespaces({
      admin,
      rate: opts.lowRate,
      durationSeconds: opts.lowDurationSeconds,
      prefix,
      labels,
      secretName: secret,
      queue,
    });
    // What was busy during the stream (CPU seconds by process): a slow stream on a busy machine says so.
    const cpuAfter = cpuOfRun(pids, cp.dir, redis.port);
    const cpuSecondsByProcess = Object.fromEntries(
      Object.entries(cpuAfter).map(([k, v]) => [k, +(v - (cpuBefore[k] ?? 0)).toFixed(2)]),
    );
    await waitQueueIdle(queue);
    const afterMetrics = await metrics();
    const ours = diffIdentityCounts(parseIdentityCounts(afterMetrics), before);
    const webhookAfter = await webhookSnapshot(afterMetrics);
    const admission =
      webhookBefore && webhookAfter ? describeStreamAdmission(webhookBefore, webhookAfter) : undefined;
    const to = Date.now();
    await new Promise((res) => setTimeout(res, 3000));
    // What our identities asked, per namespace of the stream (audit log; Lease renewals included).
    const auditLines = readAuditLines(audit.logFile);
    const perNamespace = Object.fromEntries(
      Object.entries(countAuditRequests(auditLines, from, to)).map(([id, counts]) => [
        id,
        Object.fromEntries(
          Object.entries(counts)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, +(v / r.namespaces).toFixed(2)]),
        ),
      ]),
    );
    // The same namespaces on the API server's clock: where the controller-manager's ServiceAccount and our
    // Secret spent their time (and how many ServiceAccount creates waited in NamespaceLifecycle).
    const apiServerClock = summarizeNamespacePaths(
      auditLines,
      new Set(Array.from({ length: r.namespaces }, (_, i) => `${prefix}-${i}`)),
      secret,
      r.clientTimes,
    );
    log(`production ${prefix}: ${JSON.stringify(r.createdToConverged)} ${JSON.stringify(r.hops)}`);
    if (apiServerClock) log(`production ${prefix}: ${describeNamespacePaths(apiServerClock)}`);
    if (admission) log(`production ${prefix}: webhook ${JSON.stringify(admission)}`);
    return Object.assign(r, {
      apiServerClock,
      ...(admission ? { admission } : {}),
      cpuSecondsByProcess,
      ourRequestsByVerbPerNamespace: perNamespace,
      ourRequestsPerNamespace: {
        ...Object.fromEntries(Object.entries(ours).map(([k, v]) => [k, +(v / r.namespaces).toFixed(2)])),
        total: +(totalOf(ours) / r.namespaces).toFixed(2),
      },
    });
  };
  const lowLoadSmall = await lowLoad('low');

  // --- scale to N namespaces (+ their N `default` ServiceAccounts) ---
  const bulk = Array.from(
    { length: Math.max(0, opts.namespaces - lowLoadSmall.namespaces) },
    (_, i) => `fp-${i}`,
  );
  const bulkSet = new Set(bulk);
  const obs = new ServiceAccountObserver(
    admin,
    () => [secret],
    (ns) => bulkSet.has(ns),
  );
  await obs.start();
  const scaleFrom = (performance.now() - t0) / 1000;
  const scaleCpuBefore = cpuOfRun(pids, cp.dir, redis.port);
  const s0 = performance.now();
  await runPool(bulk, opts.concurrency, async (name) => {
    await core.createNamespace({ body: { metadata: { name, labels } } });
  });
  while (bulk.some((n) => !obs.converged.has(n))) await new Promise((r) => setTimeout(r, 500));
  obs.stop();
  const scaleMs = performance.now() - s0;
  await waitQueueIdle(queue);
  const scaleCpuAfter = cpuOfRun(pids, cp.dir, redis.port);
  const scaleCpuSecondsByProcess = Object.fromEntries(
    Object.entries(scaleCpuAfter).map(([k, v]) => [k, +(v - (scaleCpuBefore[k] ?? 0)).toFixed(2)]),
  );
  const scaleTo = (performance.now() - t0) / 1000;
  log(`production: ${opts.namespaces} namespaces converged in ${(scaleMs / 1000).toFixed(1)} s`);

  // --- idle: settle, then a window of nothing but our processes and the control plane's own upkeep ---
  await new Promise((r) => setTimeout(r, 15_000));
  const idleFrom = (performance.now() - t0) / 1000;
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid).cpuSeconds]));
  const threads0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, threadCpu(pid)]));
  const m0 = await metrics();
  const w0 = Date.now();
  const load0 = os.loadavg().map((l) => +l.toFixed(2));
  await new Promise((r) => setTimeout(r, opts.idleSeconds * 1000));
  const m1 = await metrics();
  const w1 = Date.now();
  const cpu1 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid).cpuSeconds]));
  // Where each process's idle CPU went, by thread: the main thread's JavaScript and event loop, or V8's
  // helper threads (concurrent GC), which a --cpu-prof profile does not show.
  const cpuByThread = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => {
      const before = threads0[k] ?? {};
      const delta = Object.entries(threadCpu(pid))
        .map(([name, s]) => [name, +(s - (before[name] ?? 0)).toFixed(2)] as const)
        .filter(([, s]) => s > 0);
      return [k, Object.fromEntries(delta)];
    }),
  );
  const idleTo = (performance.now() - t0) / 1000;
  const ours = diffIdentityCounts(parseIdentityCounts(m1), parseIdentityCounts(m0));
  const seconds = (w1 - w0) / 1000;
  // The audit log is written in batches of up to 1 s.
  await new Promise((r) => setTimeout(r, 3000));
  const breakdown = readAuditCounts(audit.logFile, w0, w1);
  const cpu = Object.fromEntries(
    Object.keys(pids).map((k) => [k, +((cpu1[k] ?? 0) - (cpu0[k] ?? 0)).toFixed(2)]),
  );
  const idle = {
    seconds: +seconds.toFixed(1),
    loadAtStart: load0,
    loadAtEnd: os.loadavg().map((l) => +l.toFixed(2)),
    cpuSeconds: cpu,
    cpuSecondsByThread: cpuByThread,
    /** Relay (leader) + worker, scaled to 120 s: the target's unit. */
    relayPlusWorkerCpuPer120s: +((((cpu.relay ?? 0) + (cpu.worker ?? 0)) * 120) / seconds).toFixed(3),
    ourRequests: ours,
    ourRequestsPerSecond: +(totalOf(ours) / seconds).toFixed(3),
    ourRequestsPerSecondByIdentity: Object.fromEntries(
      Object.entries(ours).map(([k, v]) => [k, +(v / seconds).toFixed(3)]),
    ),
    auditBreakdown: breakdown,
    /** Every client, by verb and resource (the control plane's own upkeep included). */
    allRequests: diffTotals(parseRequestTotals(m1), parseRequestTotals(m0)),
  };
  log(`production idle: ${JSON.stringify({ cpu, ours, perSecond: idle.ourRequestsPerSecond, cpuByThread })}`);

  // --- the periodic resync (the relay enqueues one CR job per CR every RESYNC_PERIOD_MS, 10 minutes in the
  // chart): what one costs, so that its share of an idle 120 s can be stated (cost × 120 / 600) ---
  const rc0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid).cpuSeconds]));
  const rm0 = parseIdentityCounts(await metrics());
  await enqueueJobs(queue, [
    { key: { cluster: 'bench', kind: 'imagepullsecret', name: crName }, trigger: 'resync' },
  ]);
  await new Promise((r) => setTimeout(r, 500));
  await waitQueueIdle(queue);
  const rc1 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid).cpuSeconds]));
  const resyncOurs = diffIdentityCounts(parseIdentityCounts(await metrics()), rm0);
  const resyncCpu = Object.fromEntries(
    Object.keys(pids).map((k) => [k, +((rc1[k] ?? 0) - (rc0[k] ?? 0)).toFixed(2)]),
  );
  const resync = {
    periodSeconds: 600,
    cpuSeconds: resyncCpu,
    ourRequests: resyncOurs,
    relayPlusWorkerCpuPer120s: +((((resyncCpu.relay ?? 0) + (resyncCpu.worker ?? 0)) * 120) / 600).toFixed(3),
    ourRequestsPerSecond: +(totalOf(resyncOurs) / 600).toFixed(4),
  };
  log(`production resync: ${JSON.stringify(resync)}`);

  // --- low load again, on the big cluster ---
  const lowLoadBig = await lowLoad('low-big');

  clearInterval(sampler);
  const footprint = Object.fromEntries(
    Object.keys(pids).map((k) => [
      k,
      {
        idleMaxRssMiB: maxRss(k, idleFrom, idleTo),
        scalePeakRssMiB: maxRss(k, scaleFrom, scaleTo),
        peakRssMiB: maxRss(k),
      },
    ]),
  );
  const workerMetrics = (await httpText(workerPort, '/metrics')).text;
  const mib = (text: string, metric: string) =>
    +(Number(new RegExp(`${metric}(?:\\{[^}]*\\})? (\\d+)`).exec(text)?.[1] ?? 0) / 2 ** 20).toFixed(1);
  const heapUsed = (text: string) => mib(text, 'nodejs_heap_size_used_bytes');
  /** Where a process's resident memory is, at the end of the run: V8's heap (used, committed), memory outside
   * it that V8 knows of (Buffers: malloc), and the rest (code, the node binary, allocator slack). */
  const memoryOf = (text: string) => ({
    rssMiB: mib(text, 'process_resident_memory_bytes'),
    heapUsedMiB: heapUsed(text),
    heapCommittedMiB: mib(text, 'nodejs_heap_size_total_bytes'),
    externalMiB: mib(text, 'nodejs_external_memory_bytes'),
  });
  const relayMetrics = (await httpText(relay.port, '/metrics')).text;

  await worker.stop('SIGTERM', 30_000);
  await standby?.proc.stop('SIGTERM', 15_000);
  await relay.proc.stop('SIGTERM', 15_000);
  await webhook?.stop();
  await queue.close();
  await Promise.allSettled([cp.stop(), redis.stop()]);
  rmSync(auditDir, { recursive: true, force: true });

  const series = Object.entries(rss).map(([label, points]) => ({ label: `${label} RSS (MiB)`, points }));
  return {
    versions,
    result: {
      namespaces: opts.namespaces,
      controllerManagerQps: opts.controllerManagerQps ?? 20,
      webhook: opts.webhook,
      standbyRelay: opts.standby,
      workerNodeOptions: WORKER_NODE_OPTIONS,
      ...(Object.keys(WORKER_EXTRA_ENV).length > 0 ? { workerExtraEnv: WORKER_EXTRA_ENV } : {}),
      bundles: ['relay.cjs', 'functions.cjs worker', ...(opts.webhook ? ['webhook.cjs'] : [])].map(
        (b) => `node dist/image/${b}`,
      ),
      lowLoadFloor: floorLowLoad,
      lowLoad: lowLoadSmall,
      lowLoadAtScale: lowLoadBig,
      scale: {
        seconds: +(scaleMs / 1000).toFixed(1),
        namespaces: bulk.length,
        cpuSecondsByProcess: scaleCpuSecondsByProcess,
      },
      footprint: {
        ...footprint,
        relayHeapUsedMiB: heapUsed(relayMetrics),
        workerHeapUsedMiB: heapUsed(workerMetrics),
        memoryAtEnd: { relay: memoryOf(relayMetrics), worker: memoryOf(workerMetrics) },
      },
      idle,
      resync,
    },
    series,
  };
}
