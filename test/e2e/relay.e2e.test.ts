import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { startControlPlane } from '../../infra/local/control-plane.js';
import { CRD_FILE, CRD_NAME, NAMESPACE_FILE, RELAY_RBAC_FILE } from '../../infra/local/paths.js';
import { type LocalRedis, startRedis } from '../../infra/local/redis.js';
import { createRelayMetrics } from '../../relay/metrics.js';
import { createSources, Relay } from '../../relay/relay.js';
import { waitForCrdEstablished } from '../../shared/kube/crd.js';
import { connectionOf, KubeClient } from '../../shared/kube/kube-client.js';
import { loadKubeTarget } from '../../shared/kube/kube-target.js';
import { applyManifests, readManifests } from '../../shared/kube/manifests.js';
import { createLogger } from '../../shared/logging.js';
import { openQueue } from '../../shared/queue.js';
import { createCr, deleteCr, docker, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, createNamespace, serviceAccountUser, uniqueName } from '../support/kube.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { waitFor } from '../support/wait.js';
import { gateWatch } from '../support/watch-gate.js';

// The relay and the functions together, each as its own ServiceAccount, against the real control plane and
// a Redis of this file's own (so that it can be stopped).

const kc = adminKubeConfig();
/**
 * Functions' API reads per converged namespace in the burst (jobs' reads; the view's watches are not per
 * namespace): 8.35 with CLUSTER_VIEW=off, 0.18-0.57 measured with the view at load 4-8. The bound leaves room
 * for a loaded CI machine, where the view lags the relay more often and a lag costs a live read.
 */
const READS_PER_NAMESPACE_MAX = 3;
let redis: LocalRedis;
let fx: FunctionsHarness;
const crs: string[] = [];
const relays: RelayProcess[] = [];

const relayEnv = () => ({
  KUBECONFIG: inject('relayKubeconfigPath'),
  REDIS_URL: redis.url,
  QUEUE_PREFIX: fx.prefix,
  CLUSTER_ID: CLUSTER,
  LEASE_NAME: 'tcr-assistant-relay',
  LEASE_DURATION_MS: '3000',
  LEASE_RETRY_MS: '300',
});

beforeAll(async () => {
  redis = await startRedis();
  fx = await startFunctions({ REDIS_URL: redis.url, WORKER_CONCURRENCY: '16', STATUS_DELAY_MS: '500' });
});
// A failed test must not leave its relay holding the lease for the next one.
afterEach(async () => {
  while (relays.length > 0) await relays.pop()?.kill('SIGKILL');
});

afterAll(async () => {
  for (const r of relays) await r.kill('SIGKILL');
  for (const cr of crs) await deleteCr(kc, cr).catch(() => {});
  await fx?.close().catch(() => {});
  await redis?.stop();
});

/** A CR that selects namespaces by a label of its own, so each test counts only its namespaces. */
async function scopedCr(): Promise<{ cr: string; label: Record<string, string> }> {
  const value = uniqueName('burst');
  const cr = uniqueName('relay');
  crs.push(cr);
  await createCr(kc, cr, {
    namespaces: '*',
    serviceAccounts: 'default',
    namespaceSelector: { matchLabels: { burst: value } },
    docker: docker(),
  });
  return { cr, label: { burst: value } };
}

async function createNamespaces(
  names: string[],
  labels: Record<string, string>,
  concurrency = 16,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const name = names[next++] as string;
        await createNamespace(kc, name, labels);
      }
    }),
  );
}

// 240 s: the 500-namespace burst took 74 s at load 30 (two CI runs and a benchmark at once); a wait that gives
// up first says which CR and count it waited for, where the test's own timeout would say nothing.
async function waitConverged(cr: string, count: number, timeoutMs = 240_000): Promise<void> {
  await waitFor(
    `${count} namespaces converged for ${cr}`,
    async () => {
      const s = (await readCr(kc, cr)).status;
      return s?.secretsDesired === count && s.secretsSuccess === count;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

async function namespaceJobCounts(
  names: string[],
  kinds: readonly string[] = ['namespace'],
): Promise<{ min: number; max: number; mean: number }> {
  // Count once the queue is done: convergence can be seen before the last queued jobs have run.
  await fx.drain();
  const wanted = new Set(names);
  const entries = await listAudit(fx.rt.redis, `${fx.prefix}:audit`, { cluster: CLUSTER }, 1_000_000);
  const counts = new Map<string, number>();
  for (const e of entries)
    if (kinds.includes(e.kind) && e.namespace && wanted.has(e.namespace))
      counts.set(e.namespace, (counts.get(e.namespace) ?? 0) + 1);
  const values = names.map((n) => counts.get(n) ?? 0);
  return {
    min: Math.min(...values),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

// Each test's waits (relay start, convergence, drain) add up past vitest's 120 s default on a loaded machine:
// the test's timeout sits above them, so that the wait that gives up names what it waited for.
describe('relay + functions', { timeout: 600_000 }, () => {
  it('converges 500 namespaces created quickly, with 1 to a small constant of namespace jobs each', async () => {
    const relay = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-a' });
    relays.push(relay);
    await relay.waitReady();
    const { cr, label } = await scopedCr();
    const names = Array.from({ length: 500 }, (_, i) => `burst-${i}-${label.burst}`.slice(0, 63));
    const readsBefore = await fx.readCount();
    const writesBefore = await fx.writeCount();
    const started = Date.now();
    await createNamespaces(names, label);
    await waitConverged(cr, names.length);
    const jobs = await namespaceJobCounts(names);
    const reads = ((await fx.readCount()) - readsBefore) / names.length;
    const writes = ((await fx.writeCount()) - writesBefore) / names.length;
    console.log(
      `[relay] 500 namespaces converged in ${Date.now() - started} ms; namespace jobs per namespace: ${JSON.stringify(jobs)}; functions' API requests per namespace: ${reads.toFixed(2)} reads, ${writes.toFixed(2)} writes`,
    );
    expect(jobs.min).toBeGreaterThanOrEqual(1);
    expect(jobs.max).toBeLessThanOrEqual(3);
    // The worker's namespace and ServiceAccount jobs read from its watch-fed view: ~8 reads per namespace
    // before it (GET namespace ×2, LIST CRs ×2, LIST our Secrets ×2, LIST + GET ServiceAccounts).
    expect(reads).toBeLessThanOrEqual(READS_PER_NAMESPACE_MAX);
    expect(await relay.metric('tcr_relay_events_dropped_total')).toBeGreaterThanOrEqual(0);
    await relay.kill();
  });

  it('survives kill -9 during a burst: every namespace converges after a restart, without a duplicate storm', async () => {
    const { cr, label } = await scopedCr();
    const names = Array.from({ length: 200 }, (_, i) => `k9-${i}-${label.burst}`.slice(0, 63));
    const first = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-k9-a' });
    relays.push(first);
    await first.waitReady();
    await createNamespaces(names.slice(0, 100), label);
    await first.kill('SIGKILL');
    await createNamespaces(names.slice(100), label);
    const second = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-k9-b' });
    relays.push(second);
    await waitConverged(cr, names.length);
    const jobs = await namespaceJobCounts(names);
    // After a restart the relay resyncs through the CR (no job per namespace: that is the storm it avoids),
    // and a namespace created while it was dead may be converged by its ServiceAccount's job alone, before
    // the CR's fan-out sees it. So: every namespace had a job of its own (namespace or ServiceAccount), and
    // never a storm of namespace jobs.
    const anyJobs = await namespaceJobCounts(names, ['namespace', 'serviceaccount']);
    console.log(
      `[relay] kill -9 mid-burst: namespace jobs per namespace ${JSON.stringify(jobs)}, with ServiceAccount jobs ${JSON.stringify(anyJobs)}`,
    );
    expect(anyJobs.min).toBeGreaterThanOrEqual(1);
    expect(jobs.max).toBeLessThanOrEqual(4);
    await second.kill();
  });

  it('rides out Redis stopped for 30 s during a burst: every namespace converges once it is back', async () => {
    const relay = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-redis' });
    relays.push(relay);
    await relay.waitReady();
    const { cr, label } = await scopedCr();
    const names = Array.from({ length: 150 }, (_, i) => `rd-${i}-${label.burst}`.slice(0, 63));
    await createNamespaces(names.slice(0, 50), label);
    await redis.pause();
    try {
      await createNamespaces(names.slice(50), label);
      await waitFor('readiness to report Redis down', async () => !(await relay.ready()), {
        timeoutMs: 10_000,
      });
      expect(await relay.metric('tcr_relay_dirty_keys')).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 30_000));
    } finally {
      await redis.start();
    }
    await relay.waitReady(60_000);
    await waitConverged(cr, names.length);
    expect(await relay.metric('tcr_relay_redis_errors_total')).toBeGreaterThan(0);
    await relay.kill();
  });

  it('relists after 410 Gone and notices a deletion that happened while the watch was down', async () => {
    // A control plane of its own, without the watch cache, so that a watch resumed from a compacted
    // resourceVersion is answered by etcd itself: 410 Gone, as after a long partition in production.
    const cp = await startControlPlane({ name: 'gone', extraApiserverArgs: ['--watch-cache=false'] });
    const admin = new KubeConfig();
    admin.loadFromFile(cp.kubeconfigPath);
    for (const file of [CRD_FILE, NAMESPACE_FILE, RELAY_RBAC_FILE])
      await applyManifests(admin, await readManifests(file));
    await waitForCrdEstablished(admin, CRD_NAME);
    // The relay's own transport and identity, as relay/main.ts builds them.
    const asRelay = new KubeClient(
      connectionOf(
        loadKubeTarget({
          kubeconfig: await cp.kubeconfigAs(
            serviceAccountUser('tcr-assistant-system', 'tcr-assistant-relay'),
          ),
        }),
      ),
    );
    const metrics = createRelayMetrics();
    const queueConn = new Redis(redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    const queue = openQueue(queueConn, {
      prefix: `{gone${Date.now().toString(36)}}`,
      attempts: 1,
      backoffMs: 50,
    });
    // The namespace watch behind a gate, as a network partition would hold it: closing the gate ends the
    // watch, and no watch opens again until it reopens (the watcher keeps what it knows meanwhile).
    const sources = createSources(asRelay);
    const nsGate = gateWatch(sources.find((s) => s.kind === 'namespace')!);
    const relay = new Relay(
      {
        api: asRelay,
        clusterId: 'gone',
        queue,
        log: createLogger('relay', 'silent'),
        metrics,
        resyncPeriodMs: 3_600_000,
        watchdogSilenceMs: 60_000,
        maxDirtyKeys: 10_000,
        flushIntervalMs: 10,
      },
      sources,
    );
    const adminCore = admin.makeApiClient(CoreV1Api);
    const relists = async () =>
      (await metrics.relists.get()).values.find((v) => v.labels.kind === 'namespace')?.value ?? 0;
    try {
      await createCr(admin, 'c1', { docker: docker() });
      await createNamespace(admin, 'doomed');
      relay.start();
      await waitFor('relay synced', () => relay.ready);
      nsGate.close();
      await adminCore.deleteNamespace({ name: 'doomed' });
      await waitFor(
        'doomed gone',
        async () => !(await adminCore.listNamespace()).items.some((n) => n.metadata?.name === 'doomed'),
        {
          timeoutMs: 60_000,
        },
      );
      await createNamespace(admin, 'born');
      await queue.obliterate({ force: true });
      const before = await relists();
      await compactEtcd(cp.etcdUrl);
      nsGate.open();
      await waitFor('a relist after 410 Gone', async () => (await relists()) > before);
      // The namespace watch's relist finds both changes (the ServiceAccount watch, still running, also
      // reports born's `default` ServiceAccount: that one is not part of the relist).
      const keys = await waitFor('the relist to enqueue its jobs', async () => {
        const list = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
        const found = list
          .map((j) => `${j.data.key.kind}/${j.data.key.name}:${j.data.trigger}`)
          .filter((k) => k.endsWith(':relist'));
        return found.length >= 2 ? found.sort() : undefined;
      });
      expect(keys).toEqual(['imagepullsecret-status/c1:relist', 'namespace/born:relist']);
    } finally {
      await relay.stop();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      queueConn.disconnect();
      await cp.stop();
    }
  });

  it('relays from the leader only, and the standby takes over when the leader dies', async () => {
    const a = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-ha-a' });
    relays.push(a);
    // Started first (a cold start compiles TypeScript: seconds on a loaded machine), then 15 s to lead.
    await a.waitReady();
    await waitFor('a leader', async () => (await a.metric('tcr_relay_leader')) === 1, { timeoutMs: 15_000 });
    const b = await startRelayProcess({ ...relayEnv(), POD_NAME: 'relay-ha-b' });
    relays.push(b);
    await b.waitReady();
    expect(await b.metric('tcr_relay_leader')).toBe(0);

    const { cr, label } = await scopedCr();
    await createNamespace(kc, `ha1-${label.burst}`.slice(0, 63), label);
    await waitConverged(cr, 1);
    expect(await a.metric('tcr_relay_jobs_enqueued_total')).toBeGreaterThan(0);
    expect(await b.metric('tcr_relay_jobs_enqueued_total')).toBe(0);
    // The standby follows the leader's renewals through its watch of the Lease (allowed by name in our RBAC),
    // not by reading it: the renewals it saw are watch events.
    await waitFor(
      'the standby to see renewals through its Lease watch',
      async () => (await b.metric('tcr_relay_events_total', { kind: 'lease', type: 'MODIFIED' })) >= 2,
      { timeoutMs: 15_000 },
    );

    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await waitFor('the standby to lead', async () => (await b.metric('tcr_relay_leader')) === 1, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    const takeoverMs = Date.now() - killedAt;
    console.log(
      `[relay] standby took over ${takeoverMs} ms after the leader was killed (lease 3000 ms, retry 300 ms)`,
    );
    // One lease duration after the last renewal it saw, plus a retry period; measured 2,997-3,282 ms (the last
    // at load 30). The slack (was 500 ms) covers the standby's timers and its Lease PUT on a loaded API server:
    // the bound still tells a takeover at expiry from one a lease period late (≥ 6,000 ms).
    expect(takeoverMs).toBeLessThanOrEqual(3000 + 300 + 1500);
    await createNamespace(kc, `ha2-${label.burst}`.slice(0, 63), label);
    await waitConverged(cr, 2);
    await b.kill();
  });
});

/** Compacts etcd at its current revision through its HTTP gateway: older resourceVersions are gone. */
async function compactEtcd(etcdUrl: string): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { header?: { revision?: string } };
  };
  const revision = (await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') })).header
    ?.revision;
  await post('/v3/kv/compaction', { revision, physical: true });
}
