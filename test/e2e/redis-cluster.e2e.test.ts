import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { drainQueue } from '../../functions/runtime/drain.js';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { type LocalRedisCluster, slotOf, startRedisCluster } from '../../infra/local/redis-cluster.js';
import { QUEUE_NAME } from '../../shared/contracts/jobs.js';
import { WakeSlots } from '../../shared/contracts/wake-slots.js';
import { connectRedis, enqueueJobs, openQueue } from '../../shared/queue.js';
import type { RedisClient } from '../../shared/redis-connection.js';
import { createCr, deleteCr, docker, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { waitFor } from '../support/wait.js';

// The pipeline (relay process + functions worker + the run's real control plane) on a real Redis Cluster of
// three primaries and three replicas (infra/local/redis-cluster.ts), selected by a `redis+cluster://` REDIS_URL.
// With a hash-tagged prefix every key of ours lives in one slot, so the primary that matters is the one serving
// that slot: it is the one killed mid-burst.

const kc = adminKubeConfig();
let cluster: LocalRedisCluster;
let fx: FunctionsHarness;
let client: RedisClient;
const crs: string[] = [];
const relays: RelayProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1, nodeTimeoutMs: 2000 });
  fx = await startFunctions({ REDIS_URL: cluster.url, WORKER_CONCURRENCY: '16', STATUS_DELAY_MS: '500' });
  client = connectRedis(cluster.url);
}, 120_000);

afterAll(async () => {
  for (const r of relays) await r.kill('SIGKILL');
  for (const cr of crs) await deleteCr(kc, cr).catch(() => {});
  await fx?.close().catch(() => {});
  client?.disconnect();
  await cluster?.stop();
});

const relayEnv = (pod: string) => ({
  KUBECONFIG: inject('relayKubeconfigPath'),
  REDIS_URL: cluster.url,
  QUEUE_PREFIX: fx.prefix,
  CLUSTER_ID: CLUSTER,
  LEASE_NAME: 'tcr-assistant-relay',
  LEASE_DURATION_MS: '3000',
  LEASE_RETRY_MS: '300',
  POD_NAME: pod,
});

async function scopedCr(prefix: string): Promise<{ cr: string; label: Record<string, string> }> {
  const value = uniqueName(prefix);
  const cr = uniqueName(`${prefix}-cr`);
  crs.push(cr);
  await createCr(kc, cr, {
    namespaces: '*',
    serviceAccounts: 'default',
    namespaceSelector: { matchLabels: { burst: value } },
    docker: docker(),
  });
  return { cr, label: { burst: value } };
}

async function createNamespaces(names: string[], labels: Record<string, string>, concurrency = 16) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) await createNamespace(kc, names[next++] as string, labels);
    }),
  );
}

async function waitConverged(cr: string, count: number, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    `${count} namespaces converged for ${cr}`,
    async () => {
      const s = (await readCr(kc, cr)).status;
      return s?.secretsDesired === count && s.secretsSuccess === count;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

/** Namespace or ServiceAccount jobs per namespace, from the audit stream (read from the cluster). */
async function jobsPerNamespace(names: string[]): Promise<{ min: number; max: number }> {
  await fx.drain(120_000);
  const wanted = new Set(names);
  const entries = await listAudit(fx.rt.redis, fx.rt.auditKey, { cluster: CLUSTER }, 1_000_000);
  const counts = new Map<string, number>();
  for (const e of entries)
    if ((e.kind === 'namespace' || e.kind === 'serviceaccount') && e.namespace && wanted.has(e.namespace))
      counts.set(e.namespace, (counts.get(e.namespace) ?? 0) + 1);
  const values = names.map((n) => counts.get(n) ?? 0);
  return { min: Math.min(...values), max: Math.max(...values) };
}

describe('the pipeline on a Redis Cluster (3 primaries, 3 replicas)', () => {
  it('keeps every key of ours in the queue prefix slot, and the scripts (BullMQ, wake slots) run there', async () => {
    const slot = slotOf(fx.prefix);
    expect(await client.call('CLUSTER', 'KEYSLOT', fx.prefix)).toBe(slot);
    expect(cluster.url).toMatch(/^redis\+cluster:\/\/(127\.0\.0\.1:\d+,){5}127\.0\.0\.1:\d+$/);
    const nodes = await cluster.nodes();
    expect(nodes.filter((n) => n.role === 'primary')).toHaveLength(3);
    expect(nodes.filter((n) => n.role === 'replica')).toHaveLength(3);

    // Wake slots (the relay's SCF wake-ups): Lua over a slot key and the queue's own lists.
    const slots = new WakeSlots(fx.rt.redis, fx.prefix);
    expect(await slots.acquire(0, 'clustertest1', Date.now(), 10_000, 5_000)).toBe(true);
    expect((await slots.inspect(2)).held.map((h) => h.id)).toEqual(['clustertest1']);
    expect(await slots.release(0, 'clustertest1', false)).toBe('released');

    // The SCF runtime's drain (its own BullMQ Worker on a cluster connection) takes queued jobs too.
    await fx.worker.pause();
    const { cr } = await scopedCr('drain');
    try {
      await enqueueJobs(fx.rt.queue, [
        { key: { cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, trigger: 'cli' },
      ]);
      const result = await drainQueue(fx.rt, {
        deadline: Date.now() + 30_000,
        jobBudgetMs: 10_000,
        concurrency: 4,
        idleMs: 500,
        delayedWaitMs: 0,
        handoffMs: 0,
        lockMs: 30_000,
        stalledIntervalMs: 30_000,
      });
      expect(result.processed).toBeGreaterThanOrEqual(1);
      expect(result.failed).toBe(0);
    } finally {
      fx.worker.resume();
    }

    // Every key we keep (queue, audit, failures, wake slots, markers) is under the prefix, in its slot.
    const primary = await cluster.primaryFor(fx.prefix);
    // Asked of that primary itself (a cluster client would send a keyless command to any node).
    const direct = new Redis({ host: '127.0.0.1', port: primary.port, lazyConnect: true });
    const keys = (await direct.call('CLUSTER', 'GETKEYSINSLOT', slot, 10_000)) as string[];
    direct.disconnect();
    expect(keys).toContain(`${fx.prefix}:audit`);
    expect(keys).toContain(`${fx.prefix}:${QUEUE_NAME}:meta`);
    expect(keys.every((k) => k.startsWith(fx.prefix))).toBe(true);
    console.log(
      `[redis-cluster] prefix ${fx.prefix}: slot ${slot} on primary :${primary.port}, ${keys.length} keys there`,
    );
  });

  it('converges a burst through relay and workers, and loses no namespace when the queue primary is killed mid-burst', async () => {
    const relay = await startRelayProcess(relayEnv('relay-cluster-a'));
    relays.push(relay);
    await relay.waitReady();
    const { cr, label } = await scopedCr('rc');
    const names = Array.from({ length: 300 }, (_, i) => `rc-${i}-${label.burst}`.slice(0, 63));
    const started = Date.now();
    await createNamespaces(names.slice(0, 100), label);

    const victim = await cluster.primaryFor(fx.prefix);
    const replica = (await cluster.nodes()).find((n) => n.primaryId === victim.id);
    expect(replica).toBeDefined();
    const killedAt = Date.now();
    const creating = createNamespaces(names.slice(100), label);
    await cluster.kill(victim.port);
    await cluster.waitHealthy(30_000);
    const failoverMs = Date.now() - killedAt;
    const promoted = await cluster.primaryFor(fx.prefix);
    expect(promoted.port).toBe(replica?.port);
    await creating;

    await waitConverged(cr, names.length);
    const convergedMs = Date.now() - started;
    // The relay saw another server answer for the queue and resynced (the last writes to the dead primary
    // may not have reached its replica).
    await waitFor(
      'the relay to notice the failover',
      async () => (await relay.metric('tcr_relay_queue_server_changed_total')) >= 1,
      { timeoutMs: 30_000 },
    );
    const jobs = await jobsPerNamespace(names);
    console.log(
      `[redis-cluster] killed primary :${victim.port} after 100 of 300 namespaces; replica :${promoted.port} serves the slot ${failoverMs} ms later; all 300 converged in ${convergedMs} ms; jobs per namespace ${JSON.stringify(jobs)}; relay redis errors ${await relay.metric('tcr_relay_redis_errors_total')}`,
    );
    expect(jobs.min).toBeGreaterThanOrEqual(1);
    // The failover is an expected fault: one clear line per condition, no stack traces.
    const warnings = relay
      .output()
      .split('\n')
      .filter((l) => /"level":(40|50)/.test(l))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    console.log(`[redis-cluster] relay warnings: ${JSON.stringify([...new Set(warnings)])}`);
    for (const text of [relay.output(), fx.logs.text]) {
      expect(text).not.toMatch(/\n\s+at |"stack"/);
    }

    // The killed node comes back as a replica of the new primary; the cluster is whole again.
    await cluster.restart(victim.port);
    await cluster.waitHealthy(30_000);
    const back = (await cluster.nodes()).find((n) => n.port === victim.port);
    expect(back?.role).toBe('replica');

    // New work after the failover runs as before.
    const late = `rc-late-${label.burst}`.slice(0, 63);
    await createNamespace(kc, late, label);
    await waitConverged(cr, names.length + 1, 60_000);
    await relay.kill();
  }, 300_000);

  it('the CLI reads the audit from the cluster; a prefix without a hash tag is refused, naming it', async () => {
    const env = {
      ...process.env,
      REDIS_URL: cluster.url,
      QUEUE_PREFIX: fx.prefix,
      CLUSTER_ID: CLUSTER,
      KUBECONFIG: inject('functionsKubeconfigPath'),
      LOG_LEVEL: 'silent',
    };
    const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    const cli = path.join(REPO_ROOT, 'functions', 'cli.ts');
    const { stdout } = await promisify(execFile)(tsx, [cli, 'audit', '--limit', '3'], { env });
    expect(stdout.trim().split('\n')).toHaveLength(3);
    expect(stdout).toMatch(/success/);

    const relay = await startRelayProcess({ ...relayEnv('relay-cluster-bad'), QUEUE_PREFIX: 'tcr-plain' });
    relays.push(relay);
    await waitFor('the relay to exit', () => relay.child.exitCode !== null, { timeoutMs: 30_000 });
    expect(relay.child.exitCode).not.toBe(0);
    expect(relay.output()).toMatch(/QUEUE_PREFIX "tcr-plain" has no hash tag/);

    expect(() => openQueue(client, { prefix: 'tcr-plain', attempts: 1, backoffMs: 10 })).toThrow(
      /QUEUE_PREFIX "tcr-plain" has no hash tag: on a Redis Cluster/,
    );
  });
});
