// `npm run bench [-- --sizes 1000,5000 --big --rate 20 --duration 60 --workers 16]`: convergence at scale
// against the real control plane, each result next to its floor measured in the same run. Writes
// bench/results/<date>.json, .md and .svg. Not part of the test command.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
} from '@kubernetes/client-node';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { REPO_ROOT } from '../infra/local/paths.js';
import { type LocalStack, startLocalStack, waitForRelay } from '../infra/local/stack.js';
import { MANAGED_BY_LABEL } from '../shared/contracts/labels.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import { enqueueJobs } from '../shared/queue.js';
import {
  apiserverWebhookHistogram,
  diffHistogram,
  failOpenCount,
  parseHistogram,
  quantile,
  readWebhookSelf,
  shareAtMost,
} from './admission.js';
import { type FloorRuntime, floorWebhookName, startAdmissionFloor } from './admission-floor.js';
import { renderChart } from './chart.js';
import {
  diffIdentityCounts,
  type IdentityCounts,
  installIdentityFlowSchemas,
  parseIdentityCounts,
  totalOf,
} from './identities.js';
import { streamNamespaces } from './latency.js';
import {
  benchDockerConfig,
  cpuByProcessUnder,
  cpuSecondsOf,
  diffTotals,
  parseRequestTotals,
  runPool,
  ServiceAccountObserver,
  waitAllSecretsCarry,
  waitQueueIdle,
} from './observe.js';
import { benchProduction } from './production.js';
import { renderTable } from './render-table.js';
import {
  type CpuSample,
  diffCpu,
  type RotationRounds,
  type RotationSide,
  rotationOrder,
  summariseRotation,
} from './rotation-rounds.js';

// `npm run bench -- --fleet [--clusters K --namespaces N --redis cluster|single]`: the fleet scenario instead
// (bench/fleet.ts: one shared token rotated across K control planes; it exits when done).
if (process.argv.includes('--fleet')) await import('./fleet.js');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,5000' },
    big: { type: 'boolean', default: false },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '60' },
    workers: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '16' },
    // The controller-manager's client rate: 20/s as in real clusters bounds every burst (ours and the floor)
    // at 20 namespaces/s; a higher one measures the pipeline itself. A list (`400,20`) runs each runtime's
    // scenarios once per rate, each on a fresh stack, in this one run.
    'kcm-qps': { type: 'string', default: '20' },
    // Every figure of issue #15's "Done when" in one run: `--kcm-qps 400,20 --production --idle-seconds 120`
    // (worker runtime) and a table of each target against its figure.
    'done-when': { type: 'boolean', default: false },
    // Where the functions run: worker (BullMQ workers), scf (the bundle on the emulator's SCF, woken by the
    // relay), or both in one run (`worker,scf`), each on a fresh stack, reported side by side; `none` runs
    // only the production scenario.
    runtime: { type: 'string', default: 'worker' },
    // The production-shaped scenario (bench/production.ts): every component its own process running the
    // image's bundle; low load (--low-rate/s for --low-duration s), footprint at --production-namespaces,
    // idle CPU and our identities' API requests over --idle-seconds.
    production: { type: 'boolean', default: false },
    'production-namespaces': { type: 'string', default: '5000' },
    'low-rate': { type: 'string', default: '2' },
    'low-duration': { type: 'string', default: '60' },
    'idle-seconds': { type: 'string', default: '120' },
    // With the admission webhook on, a new ServiceAccount carries our entry from birth and the functions only
    // make the Secret; `off` leaves the ServiceAccount patch to the functions too (the whole job path).
    webhook: { type: 'string', default: 'on' },
    // Registers a no-op webhook (bench/admission-floor.ts) for the same ServiceAccount CREATEs: the API
    // server's admission latency of a webhook that does nothing, next to ours, in the same burst.
    'admission-floor': { type: 'boolean', default: false },
  },
});
if (values['done-when']) {
  values['kcm-qps'] = '400,20';
  values.production = true;
  values['idle-seconds'] = '120';
  values.runtime = 'worker';
}
if (values.webhook !== 'on' && values.webhook !== 'off') throw new Error('--webhook must be on or off');
if (values['admission-floor'] && values.webhook !== 'on')
  throw new Error('--admission-floor compares with our webhook: it needs --webhook on');
type Runtime = 'worker' | 'scf';
const runtimes = (values.runtime === 'none' ? [] : values.runtime!.split(',')).map((r) => {
  if (r !== 'worker' && r !== 'scf') throw new Error(`--runtime: "${r}" is not worker or scf`);
  return r as Runtime;
});
const kcmRates = values['kcm-qps']!.split(',').map((q) => {
  const n = Number(q);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--kcm-qps: "${q}" is not a positive integer`);
  return n;
});
/** The stack's setting for a rate: the tooling's default is the controller-manager's own 20 QPS. */
const kcmSetting = (qps: number) => (qps === 20 ? undefined : qps);
const sizes = values
  .sizes!.split(',')
  .map(Number)
  .concat(values.big ? [10_000] : []);
const workers = Number(values.workers);
/** The no-op webhooks of --admission-floor. */
const FLOORS: FloorRuntime[] = ['node', 'go'];
const concurrency = Number(values.concurrency);
/** Namespaces each side (ours, the floor) serves on a fresh stack before anything is measured. */
const WARM_UP = 200;
/**
 * Rotations per side at each size: six, so each side goes first, second and last twice (rotation-rounds.ts).
 * Three rounds left the medians at the mercy of one disturbed round: the same code measured 1.06–1.47× the
 * floor round by round in one run, and the floor alone moved 1,043–1,564 ms (2026-11-30-03-56).
 */
const ROTATION_ROUNDS = 6;
const log = (m: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);

execFileSync(process.execPath, [path.join(REPO_ROOT, 'infra', 'scripts', 'build-relay.mjs')], {
  stdio: 'inherit',
});
// The webhook as the image runs it (a bundle, plain node): its memory is measured.
execFileSync(
  process.execPath,
  [path.join(REPO_ROOT, 'infra', 'scripts', 'build-bundles.mjs'), path.join(REPO_ROOT, 'dist', 'image')],
  { stdio: 'inherit' },
);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  },
  workers,
  clientConcurrency: concurrency,
  warmUpNamespaces: WARM_UP,
  controllerManagerQps: kcmRates[0],
  ...(kcmRates.length > 1 ? { controllerManagerQpsRuns: kcmRates } : {}),
  webhook: values.webhook,
  ...(values['done-when'] ? { doneWhen: true } : {}),
  loadBefore: os.loadavg().map((l) => +l.toFixed(2)),
};
const series: { label: string; points: [number, number][] }[] = [];

/**
 * What the emulator's SCF ran from `since` (epoch ms) to now: invocations that were running at any time in
 * that window (started in it, or still draining from before), by whom they were started, cold starts and the
 * relay's Invoke calls in the window.
 */
function scfCounts(stack: LocalStack, since = 0) {
  const now = Date.now();
  const records = stack.emulator.scf
    .invocations()
    .filter((r) => (r.startedAt ?? r.queuedAt) <= now && (r.endedAt ?? now) >= since);
  const started = records.filter((r) => r.queuedAt >= since);
  return {
    executions: records.length,
    startedInWindow: started.length,
    wokenByRelay: started.filter((r) => r.type === 'Event').length,
    byTimers: started.filter((r) => r.type === 'Timer').length,
    coldStarts: started.filter((r) => r.cold).length,
    invokeCalls: stack.emulator.callLog().filter((c) => c.action === 'Invoke' && c.at >= since).length,
    failed: records.filter((r) => r.outcome !== undefined && r.outcome !== 'success').length,
  };
}

/** What a phase that began at `since` cost in invocations, in total and per 1,000 namespaces. */
function scfPhase(stack: LocalStack, since: number, namespaces: number) {
  const counts = scfCounts(stack, since);
  return { ...counts, executionsPer1000Namespaces: +((counts.executions / namespaces) * 1000).toFixed(1) };
}

function scfSummary(stack: LocalStack) {
  const rss = stack.emulator.scf
    .instances()
    .map((i) => (i.pid ? readProcRssMiB(i.pid) : 0))
    .reduce((a, b) => a + b, 0);
  return { totals: scfCounts(stack), instancesRssMiB: +rss.toFixed(1) };
}

function readProcRssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
const ms = (seconds: number) => +(seconds * 1000).toFixed(2);
const perNamespace = (requests: Record<string, number>, n: number) =>
  Object.fromEntries(Object.entries(requests).map(([k, v]) => [k, +(v / n).toFixed(2)]));

/** One runtime's scenarios on a fresh stack: bursts (with floors), steady state, rotation, latency. */
async function benchRuntime(runtime: Runtime, kcmQps: number) {
  const stack: LocalStack = await startLocalStack({
    clusterId: 'bench',
    workerConcurrency: workers,
    controllerManagerQps: kcmSetting(kcmQps),
    statusDelayMs: 5000,
    relayBundle: path.join(REPO_ROOT, 'dist', 'relay', 'main.cjs'),
    relayEnv: { LOG_LEVEL: 'warn' },
    webhookBundle: path.join(REPO_ROOT, 'dist', 'image', 'webhook.cjs'),
    runtime,
    webhook: values.webhook === 'on',
  });
  // The floor is a bare script done right: one keep-alive connection pool, as the functions use.
  const core = shareConnections(stack.admin).makeApiClient(CoreV1Api);
  const apiMetrics = async () => parseRequestTotals((await stack.cluster.get('/metrics')).body);
  // Our identities' requests as the API server counts them (a FlowSchema each: bench/identities.ts).
  await installIdentityFlowSchemas(stack.admin);
  const ourMetrics = async () => parseIdentityCounts((await stack.cluster.get('/metrics')).body);
  const ourPerNamespace = (c: IdentityCounts, n: number) => ({
    relay: +(c.relay / n).toFixed(3),
    functions: +(c.functions / n).toFixed(3),
    webhook: +(c.webhook / n).toFixed(3),
    total: +(totalOf(c) / n).toFixed(3),
  });
  const k8sVersion = JSON.parse((await stack.cluster.get('/version')).body).gitVersion as string;
  results.versions = { node: process.version, kubernetes: k8sVersion, redis: stack.redis.version };
  const bursts: unknown[] = [];
  const label = (what: string) =>
    `${runtimes.length > 1 ? `${runtime} ` : ''}${kcmRates.length > 1 ? `kcm ${kcmQps} ` : ''}${what}`;

  const crName = 'bench';
  const secret = secretNameFor(crName);
  const docker = (password: string) => ({ server: 'bench.tencentcloudcr.com', username: 'bench', password });
  const dockerConfig = benchDockerConfig;

  async function procStats(pid: number) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(stat[11]) + Number(stat[12]);
    return { rssMiB: +(rssKb / 1024).toFixed(1), cpuSeconds: ticks / 100 };
  }

  /** The admission webhook as the API server sees it (our webhook's CREATE calls) and as it sees itself. */
  async function admissionSnapshot() {
    const metrics = (await stack.cluster.get('/metrics')).body;
    const self = stack.webhook ? await readWebhookSelf(stack.webhook) : undefined;
    return {
      api: apiserverWebhookHistogram(metrics),
      floors: Object.fromEntries(
        FLOORS.map((f) => [
          f,
          parseHistogram(metrics, 'apiserver_admission_webhook_admission_duration_seconds', {
            name: floorWebhookName(f),
            operation: 'CREATE',
          }),
        ]),
      ) as Record<FloorRuntime, ReturnType<typeof parseHistogram>>,
      failOpen: failOpenCount(metrics),
      server: self?.server ?? { buckets: [], count: 0, sum: 0 },
      // Requests that found their namespace not yet in the webhook's view and waited for its watch.
      namespaceWaits: self ? self.waitsSeen + self.waitsTimeout : 0,
    };
  }
  /** The webhook's node process (the managed process is its supervisor). */
  const webhookPid = () => {
    const supervisor = stack.webhook?.process.child.pid;
    if (supervisor === undefined) return undefined;
    const children = readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8')
      .trim()
      .split(' ');
    return children[0] ? Number(children[0]) : undefined;
  };
  let admission: Record<string, unknown> | undefined;

  async function createNamespaces(names: string[], labels: Record<string, string>) {
    await runPool(names, concurrency, async (name) => {
      await core.createNamespace({ body: { metadata: { name, labels } } });
    });
  }

  async function waitAll(map: Map<string, number>, names: string[], what: string, timeoutMs = 1_800_000) {
    const deadline = Date.now() + timeoutMs;
    while (names.some((n) => !map.has(n))) {
      if (Date.now() > deadline)
        throw new Error(`${what}: ${names.filter((n) => !map.has(n)).length} not converged`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  await waitForRelay(stack);
  // "*"/"*" restricted to the benchmark's own namespaces, so that the floor's namespaces stay untouched.
  await createImagePullSecret(stack.admin, crName, {
    namespaces: '*',
    serviceAccounts: '*',
    namespaceSelector: { matchLabels: { 'bench-owner': 'tcr-assistant' } },
    docker: docker('v1'),
  });
  const admissionFloors = [];
  if (values['admission-floor'])
    for (const f of FLOORS)
      admissionFloors.push(await startAdmissionFloor(stack.admin, { 'bench-owner': 'tcr-assistant' }, f));
  log(
    `${runtime}: stack up: ${k8sVersion}, redis ${stack.redis.version}, ${workers} workers, controller-manager ${kcmQps} QPS`,
  );

  /**
   * The floor's burst: a bare script that, as each namespace's `default` ServiceAccount appears, writes the
   * Secret `secretName` and patches the ServiceAccount, with the same client concurrency as ours.
   */
  async function floorBurst(floor: string[], secretName: string, what: string) {
    const floorSet = new Set(floor);
    const done = new Map<string, number>();
    const pending: string[] = [];
    const fobs = new ServiceAccountObserver(
      stack.admin,
      () => [],
      (ns) => floorSet.has(ns),
    );
    await fobs.start();
    const f0 = performance.now();
    let inflight = 0;
    const fobsStarted = new Set<string>();
    const pump = setInterval(() => {
      for (const ns of fobs.appeared.keys())
        if (!done.has(ns) && !pending.includes(ns) && !fobsStarted.has(ns)) pending.push(ns);
      while (inflight < concurrency && pending.length > 0) {
        const ns = pending.shift()!;
        fobsStarted.add(ns);
        inflight++;
        void (async () => {
          await core.createNamespacedSecret({
            namespace: ns,
            body: {
              metadata: { name: secretName },
              type: 'kubernetes.io/dockerconfigjson',
              data: { '.dockerconfigjson': dockerConfig('v1') },
            },
          });
          await core.patchNamespacedServiceAccount(
            { namespace: ns, name: 'default', body: { imagePullSecrets: [{ name: secretName }] } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
          done.set(ns, performance.now());
        })().finally(() => inflight--);
      }
    }, 5);
    await createNamespaces(floor, {});
    await waitAll(done, floor, what);
    clearInterval(pump);
    fobs.stop();
    return { done, f0 };
  }

  // Warm-up, not measured: the first burst of a fresh stack would otherwise be ours, on a cold API server,
  // relay and worker, and the floor's right after on warm ones. Both first serve WARM_UP namespaces of their
  // own (a CR and a Secret name of their own, so that no later figure counts them).
  {
    const warmCr = `${crName}-warm`;
    await createImagePullSecret(stack.admin, warmCr, {
      namespaces: '*',
      serviceAccounts: '*',
      namespaceSelector: { matchLabels: { 'bench-warm': 'yes' } },
      docker: docker('v1'),
    });
    const warm = Array.from({ length: WARM_UP }, (_, i) => `warm-ours-${i}`);
    const warmSet = new Set(warm);
    const observer = new ServiceAccountObserver(
      stack.admin,
      () => [secretNameFor(warmCr)],
      (ns) => warmSet.has(ns),
    );
    await observer.start();
    const w0 = performance.now();
    await createNamespaces(warm, { 'bench-warm': 'yes' });
    await waitAll(observer.converged, warm, 'warm-up (ours)');
    observer.stop();
    const oursWarmMs = performance.now() - w0;
    const floorWarm = Array.from({ length: WARM_UP }, (_, i) => `warm-floor-${i}`);
    const w1 = performance.now();
    await floorBurst(floorWarm, 'floor-warm', 'warm-up (floor)');
    await waitQueueIdle(stack.functions.queue);
    log(
      `warm-up: ${WARM_UP} namespaces each, ours ${oursWarmMs.toFixed(0)} ms, the floor ${(performance.now() - w1).toFixed(0)} ms (not measured)`,
    );
  }

  /** Every floor namespace so far: the floor's rotation rewrites as many Secrets as ours does. */
  const allFloor: string[] = [];
  /** Every Secret of that name carries `want`: the same observer for ours and for the floor. */
  const waitAllCarry = (name: string, want: string) => waitAllSecretsCarry(stack.admin, name, want);
  for (const n of sizes) {
    // --- ours ---
    const ours = Array.from({ length: n }, (_, i) => `ours-${n}-${i}`);
    const oursSet = new Set(ours);
    const observer = new ServiceAccountObserver(
      stack.admin,
      () => [secret, 'floor-pull'],
      (ns) => oursSet.has(ns),
    );
    await observer.start();
    const scf0 = runtime === 'scf' ? Date.now() : undefined;
    const admissionBefore = await admissionSnapshot();
    const before = await apiMetrics();
    const oursBefore = await ourMetrics();
    const relayBefore = await procStats(stack.relay.pid!);
    const t0 = performance.now();
    await createNamespaces(ours, { 'bench-owner': 'tcr-assistant' });
    // Converged: the ServiceAccount carries the entry (from birth, with the webhook) and the Secret exists.
    await waitAll(observer.converged, ours, `ours N=${n}`);
    const oursMs = Math.max(...ours.map((ns) => observer.converged.get(ns)!)) - t0;
    const burstRequests = diffTotals(await apiMetrics(), before);
    const scfBurst = scf0 ? scfPhase(stack, scf0, n) : undefined;
    const scfRss = runtime === 'scf' ? scfSummary(stack).instancesRssMiB : undefined;
    if (scfBurst) log(`scf N=${n}: ${JSON.stringify(scfBurst)}`);
    observer.stop();
    log(`ours N=${n}: ${oursMs.toFixed(0)} ms`);
    const admissionAfter = await admissionSnapshot();
    // What the burst cost our identities once everything it caused is done (status writes included), before
    // the floor's namespaces give the relay and the functions other work.
    await waitQueueIdle(stack.functions.queue);
    const settled = diffTotals(await apiMetrics(), before);
    const ourBurst = ourPerNamespace(diffIdentityCounts(await ourMetrics(), oursBefore), n);
    log(`ours N=${n}: our identities' API requests per namespace ${JSON.stringify(ourBurst)}`);
    if (n === sizes[0]) {
      // Admission during a burst of N new namespaces (each `default` ServiceAccount is one call), and what
      // the whole burst cost once the queue is idle (compared below with the same burst without the webhook).
      const after = admissionAfter;
      const api = diffHistogram(after.api, admissionBefore.api);
      const server = diffHistogram(after.server, admissionBefore.server);
      admission = {
        n,
        webhook: values.webhook,
        calls: api.count,
        apiserver: {
          p50Ms: ms(quantile(api, 0.5)),
          p99Ms: ms(quantile(api, 0.99)),
          meanMs: ms(api.sum / Math.max(1, api.count)),
          shareAtMost5ms: +shareAtMost(api, 0.005).toFixed(4),
          shareAtMost25ms: +shareAtMost(api, 0.025).toFixed(4),
        },
        webhookServer: { p50Ms: ms(quantile(server, 0.5)), p99Ms: ms(quantile(server, 0.99)) },
        ...(admissionFloors.length > 0
          ? {
              floors: Object.fromEntries(
                FLOORS.map((f) => {
                  const floor = diffHistogram(after.floors[f], admissionBefore.floors[f]);
                  return [
                    f,
                    {
                      calls: floor.count,
                      p50Ms: ms(quantile(floor, 0.5)),
                      p99Ms: ms(quantile(floor, 0.99)),
                      meanMs: ms(floor.sum / Math.max(1, floor.count)),
                      shareAtMost5ms: +shareAtMost(floor, 0.005).toFixed(4),
                      shareAtMost25ms: +shareAtMost(floor, 0.025).toFixed(4),
                    },
                  ];
                }),
              ),
            }
          : {}),
        failOpen: after.failOpen - admissionBefore.failOpen,
        namespaceWaits: after.namespaceWaits - admissionBefore.namespaceWaits,
        bornWithEntry: ours.filter((ns) => observer.carrying.get(ns) === observer.appeared.get(ns)).length,
        // All clients' requests per namespace for this burst, with the webhook on or off as the run says.
        [values.webhook === 'on' ? 'withWebhook' : 'withoutWebhook']: perNamespace(settled, n),
        loadDuringBurst: os.loadavg()[0],
      };
      log(`admission N=${n}: ${JSON.stringify(admission)}`);
    }
    series.push({
      label: label(`ours N=${n}`),
      points: ours
        .map((ns) => observer.converged.get(ns)! - t0)
        .sort((a, b) => a - b)
        .map((t, i) => [t / 1000, i + 1]),
    });

    // --- floor: the same writes, the same client concurrency, no queue ---
    const floor = Array.from({ length: n }, (_, i) => `floor-${n}-${i}`);
    allFloor.push(...floor);
    const { done, f0 } = await floorBurst(floor, 'floor-pull', `floor N=${n}`);
    const floorMs = Math.max(...done.values()) - f0;
    log(`floor N=${n}: ${floorMs.toFixed(0)} ms (ratio ${(oursMs / floorMs).toFixed(2)})`);
    series.push({
      label: label(`floor N=${n}`),
      points: [...done.values()]
        .map((t) => t - f0)
        .sort((a, b) => a - b)
        .map((t, i) => [t / 1000, i + 1]),
    });

    // --- steady state: a full resync of a converged cluster ---
    // Converged means the queue too: the floor's namespaces (not ours to serve) still cost the workers reads
    // while the floor runs; those jobs must be done before the window opens.
    await waitQueueIdle(stack.functions.queue);
    const s0 = await apiMetrics();
    await enqueueJobs(stack.functions.queue, [
      { key: { cluster: 'bench', kind: 'imagepullsecret', name: crName }, trigger: 'resync' },
    ]);
    await new Promise((r) => setTimeout(r, 500));
    while (((await stack.functions.queue.getJobCounts('active')).active ?? 0) > 0)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 3000));
    const steady = diffTotals(await apiMetrics(), s0);
    const totalNamespaces = (await core.listNamespace()).items.length;
    // Writes to what tcr-assistant manages (Lease renewals of the relay and the API server's own endpoint
    // upkeep are not reconcile writes; they are listed in `requests`).
    const writes = Object.entries(steady)
      .filter(([k]) =>
        /^(POST|PUT|PATCH|DELETE) (secrets|serviceaccounts|imagepullsecrets|configmaps|events)/.test(k),
      )
      .reduce((a, [, v]) => a + v, 0);
    const reads = Object.entries(steady)
      .filter(([k]) => /^(GET|LIST) /.test(k))
      .reduce((a, [, v]) => a + v, 0);

    // The floor once more, in our Secret's shape: the metadata of a Secret of ours (read from one: its labels, and
    // whatever else it carries: an owner reference or annotation from versions before #15), `managed-by` changed
    // so that nothing of ours takes them for its own. Rewriting them with the bare script, next to the bare floor,
    // says what the shape alone costs the API server.
    const sample = await core.readNamespacedSecret({ namespace: ours[0] as string, name: secret });
    const shapedMeta = {
      name: 'floor-shaped',
      labels: { ...sample.metadata?.labels, [MANAGED_BY_LABEL]: 'bench-floor' },
      annotations: sample.metadata?.annotations,
      ownerReferences: sample.metadata?.ownerReferences,
    };
    const shaped = (password: string) => ({
      metadata: shapedMeta,
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': dockerConfig(password) },
    });
    await runPool(floor, concurrency, async (ns) => {
      await core.createNamespacedSecret({ namespace: ns, body: shaped('v1') });
    });

    // --- rotation: ours, the bare floor and the floor in our shape, in rounds (bench/rotation-rounds.ts) ---
    const allOurs = (await core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${secret}` }))
      .items.length;
    /** The bare script's rotation: every floor namespace's Secret `name` rewritten, until all carry `want`. */
    const rotateFloor = async (name: string, body: V1Secret, want: string) => {
      const t0 = performance.now();
      const done = waitAllCarry(name, want);
      await runPool(allFloor, concurrency, async (ns) => {
        await core.replaceNamespacedSecret({ namespace: ns, name, body });
      });
      return (await done) - t0;
    };
    /** Ours: the CR's credential changed, until every Secret of ours carries it. */
    const rotateOurs = async (password: string, want: string) => {
      const t0 = performance.now();
      await stack.admin
        .makeApiClient((await import('@kubernetes/client-node')).CustomObjectsApi)
        .patchClusterCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            name: crName,
            body: { spec: { docker: docker(password) } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      return (await waitAllCarry(secret, want)) - t0;
    };
    const rotationRounds: RotationRounds = { ours: [], floor: [], floorOurShape: [] };
    const rotationCpu: Record<RotationSide, CpuSample[]> = { ours: [], floor: [], floorOurShape: [] };
    // The worker runs in this process, with the observer and the floor's client: 'bench'.
    const cpuNow = (): CpuSample => ({
      ...cpuByProcessUnder(stack.cluster.dir, 'bench'),
      relay: cpuSecondsOf(stack.relay.pid!),
    });
    for (let round = 0; round < ROTATION_ROUNDS; round++) {
      const rot = `v${round + 2}-${n}`;
      const want = dockerConfig(rot);
      for (const side of rotationOrder(round)) {
        // Each side starts on a settled cluster: our CR job's status refresh after a rotation of ours, or
        // anything the floor's writes gave the queue, is done before the next side's clock starts.
        await waitQueueIdle(stack.functions.queue);
        await new Promise((r) => setTimeout(r, 1000));
        const cpu0 = cpuNow();
        const ms =
          side === 'ours'
            ? await rotateOurs(rot, want)
            : side === 'floor'
              ? await rotateFloor(
                  'floor-pull',
                  {
                    metadata: { name: 'floor-pull' },
                    type: 'kubernetes.io/dockerconfigjson',
                    data: { '.dockerconfigjson': want },
                  },
                  want,
                )
              : await rotateFloor('floor-shaped', shaped(rot), want);
        rotationRounds[side].push(ms);
        rotationCpu[side].push(diffCpu(cpu0, cpuNow()));
      }
    }
    const rotation = summariseRotation(allOurs, rotationRounds, rotationCpu);
    log(
      `rotation N=${n} (${allOurs} Secrets, median of ${ROTATION_ROUNDS} rounds): ${rotation.oursMs} ms vs floor ${rotation.floorMs} ms, floor in our shape ${rotation.floorOurShapeMs} ms; rounds ${JSON.stringify(rotation.rounds)}; CPU s ${JSON.stringify(rotation.cpuSeconds)}`,
    );

    const relayAfter = await procStats(stack.relay.pid!);
    const cr = (await stack.admin
      .makeApiClient((await import('@kubernetes/client-node')).CustomObjectsApi)
      .getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: crName })) as {
      status?: unknown;
    };
    const redisInfo = (await stack.functions.redis.info('memory')).match(/used_memory:(\d+)/)?.[1];
    bursts.push({
      n,
      burst: {
        oursMs: Math.round(oursMs),
        floorMs: Math.round(floorMs),
        ratio: +(oursMs / floorMs).toFixed(3),
      },
      steadyState: {
        writes,
        reads,
        namespaces: totalNamespaces,
        readsPerNamespace: +(reads / totalNamespaces).toFixed(3),
        requests: steady,
      },
      rotation,
      footprint: {
        relayRssMiB: relayAfter.rssMiB,
        relayCpuSeconds: +(relayAfter.cpuSeconds - relayBefore.cpuSeconds).toFixed(2),
        ...(webhookPid() ? { webhookRssMiB: (await procStats(webhookPid() as number)).rssMiB } : {}),
        workerProcessRssMiB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1),
        ...(scfRss === undefined ? {} : { scfInstancesRssMiB: scfRss }),
        redisUsedMemoryMiB: +(Number(redisInfo ?? 0) / 2 ** 20).toFixed(1),
        crStatusBytes: JSON.stringify(cr.status ?? {}).length,
      },
      ...(scfBurst ? { scf: scfBurst } : {}),
      apiRequestsPerNamespace: perNamespace(burstRequests, n),
      // Ours only (relay, functions, webhook ServiceAccounts), writes included, queue drained.
      ourApiRequestsPerNamespace: ourBurst,
    });
  }

  // --- the first burst again, without the webhook: what the job path spends when ServiceAccounts are not
  // born with the entry ---
  if (stack.webhook && admission) {
    const n = sizes[0] as number;
    const api = stack.admin.makeApiClient(AdmissionregistrationV1Api);
    const saved = await api.readMutatingWebhookConfiguration({ name: 'tcr-assistant' });
    await api.deleteMutatingWebhookConfiguration({ name: 'tcr-assistant' });
    await new Promise((r) => setTimeout(r, 2000));
    const names = Array.from({ length: n }, (_, i) => `nowh-${n}-${i}`);
    const set = new Set(names);
    const obs = new ServiceAccountObserver(
      stack.admin,
      () => [secret],
      (ns) => set.has(ns),
    );
    await obs.start();
    const b0 = await apiMetrics();
    const ours0 = await ourMetrics();
    const t0 = performance.now();
    await createNamespaces(names, { 'bench-owner': 'tcr-assistant' });
    await waitAll(obs.converged, names, `without webhook N=${n}`);
    const withoutMs = Math.max(...names.map((ns) => obs.converged.get(ns)!)) - t0;
    await waitQueueIdle(stack.functions.queue);
    const requests = diffTotals(await apiMetrics(), b0);
    admission.ourWithoutWebhook = ourPerNamespace(diffIdentityCounts(await ourMetrics(), ours0), n);
    obs.stop();
    const body: V1MutatingWebhookConfiguration = {
      ...saved,
      metadata: { name: saved.metadata?.name, labels: saved.metadata?.labels },
    };
    await api.createMutatingWebhookConfiguration({ body });
    admission.withoutWebhook = perNamespace(requests, n);
    admission.withoutWebhookBurstMs = Math.round(withoutMs);
    log(`without webhook N=${n}: ${withoutMs.toFixed(0)} ms, ${JSON.stringify(admission.withoutWebhook)}`);
  }

  // --- latency: a steady stream of new namespaces (`--rate 2` is the low-load figure), each timed from its
  // create request to converged; the hops of each namespace's job from the queue's history ---
  const scfL0 = runtime === 'scf' ? Date.now() : undefined;
  const lat = await streamNamespaces({
    admin: stack.admin,
    rate: Number(values.rate),
    durationSeconds: Number(values.duration),
    prefix: 'lat',
    labels: { 'bench-owner': 'tcr-assistant' },
    secretName: secret,
    queue: stack.functions.queue,
    timeoutMs: 1_800_000,
  });
  const latency = {
    ...lat,
    // As earlier runs wrote them (bench/render-table.ts): ServiceAccount seen → converged.
    p50Ms: Math.round(lat.serviceAccountSeenToConverged.p50Ms),
    p99Ms: Math.round(lat.serviceAccountSeenToConverged.p99Ms),
    maxMs: Math.round(lat.serviceAccountSeenToConverged.maxMs),
    ...(scfL0 ? { scf: scfPhase(stack, scfL0, lat.namespaces) } : {}),
  };
  log(
    `latency: created → converged p50 ${lat.createdToConverged.p50Ms} ms, p99 ${lat.createdToConverged.p99Ms} ms; hops ${JSON.stringify(lat.hops)}`,
  );

  const scfTotals = runtime === 'scf' ? scfSummary(stack) : undefined;
  for (const floor of admissionFloors) await floor.stop();
  await stack.stop();
  return {
    runtime,
    controllerManagerQps: kcmQps,
    bursts,
    latency,
    admission,
    ...(scfTotals ? { scf: scfTotals } : {}),
  };
}

const runs = [];
const footprintSeries: typeof series = [];
// The production scenario first: its latency streams are timed by this process (the namespace's create sent →
// the observer's watch saw it converged), which is leanest before the bursts have filled its heap.
if (values.production) {
  const production = await benchProduction({
    namespaces: Number(values['production-namespaces']),
    lowRate: Number(values['low-rate']),
    lowDurationSeconds: Number(values['low-duration']),
    idleSeconds: Number(values['idle-seconds']),
    // Several rates: the production scenario runs with the controller-manager's own 20 QPS when it is among
    // them (as real clusters do), else with the first.
    controllerManagerQps: kcmSetting(kcmRates.includes(20) ? 20 : (kcmRates[0] as number)),
    webhook: values.webhook === 'on',
    standby: true,
    concurrency,
    log,
  });
  results.production = production.result;
  results.versions ??= { node: process.version, ...production.versions };
  footprintSeries.push(...production.series);
}
for (const runtime of runtimes) for (const qps of kcmRates) runs.push(await benchRuntime(runtime, qps));
// The first runtime's results at the top level too, as earlier runs wrote them (bench/render-table.ts).
Object.assign(results, {
  runtime: runs[0]?.runtime,
  bursts: runs[0]?.bursts,
  latency: runs[0]?.latency,
  admission: runs[0]?.admission,
});
results.runtimes = runs;
results.loadAfter = os.loadavg().map((l) => +l.toFixed(2));

// --- outputs ---
const dir = path.join(REPO_ROOT, 'bench', 'results');
if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
const stamp = (results.date as string).slice(0, 19).replace(/[:T]/g, '-');
writeFileSync(path.join(dir, `${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
if (series.length > 0)
  writeFileSync(
    path.join(dir, `${stamp}.svg`),
    renderChart(series, 'Namespaces converged over time (burst)'),
  );
if (footprintSeries.length > 0)
  writeFileSync(
    path.join(dir, `${stamp}${series.length > 0 ? '-footprint' : ''}.svg`),
    renderChart(footprintSeries, 'RSS (MiB) over seconds: production bundles, own processes'),
  );
writeFileSync(path.join(dir, `${stamp}.md`), renderTable(results));
console.log(renderTable(results));
process.exit(0);
