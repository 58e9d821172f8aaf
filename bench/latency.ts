// The latency scenario: a steady stream of new namespaces (`rate` per second for `duration` seconds), each
// timed from the moment its create request is sent to converged (its Secret present and its `default`
// ServiceAccount carrying the entry), as a user who runs `kubectl create namespace` would time it. Where the
// time goes comes from the jobs themselves: BullMQ keeps the last 1,000 completed jobs with the producer's
// timestamp (`data.at`, the relay saw the event), when the job was added, picked up and finished.
//
// The creates go through the light client (shared/kube/kube-client.ts, a kept-alive TLS connection opened
// before the clock starts), not client-node, whose request building (credentials, serialization) runs after
// the clock has started: the benchmark's own cost, not the namespace's. Measured 2026-11-30 on the API server's
// clock (audit log): create sent → received p50 1.0–1.1 / p99 1.9–4.4 ms with client-node, p50 0.9–1.0 /
// p99 1.9–2.0 ms with the light client (two production low-load streams each).
import os from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Job, Queue } from 'bullmq';
import { listWatchOf } from '../shared/kube/client-node-connection.js';
import { percentile, ServiceAccountObserver } from './observe.js';

export interface Quantiles {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LatencyResult {
  rate: number;
  durationSeconds: number;
  namespaces: number;
  /** Create request sent → converged: the figure the target is stated in. */
  createdToConverged: Quantiles;
  /** The namespace's `default` ServiceAccount seen by a watch → converged (what earlier runs reported). */
  serviceAccountSeenToConverged: Quantiles;
  /** The create request's own round trip, and create sent → `default` ServiceAccount seen (the controller-manager). */
  createCall: Quantiles;
  serviceAccountAppears: Quantiles;
  /** p50 / p99 of each hop of the namespace's first job, for the namespaces whose job was still in the queue's history. */
  hops?: Record<string, { p50Ms: number; p99Ms: number }>;
  jobsFound?: number;
  /** 1-minute load average as the stream ended (the machine is shared). */
  loadAtEnd: number;
  /**
   * A namespace's create sent and its convergence seen, as epoch ms (to line them up with the API server's
   * audit log). A function, so it stays out of the results' JSON.
   */
  clientTimes?: (ns: string) => { sentMs: number; convergedMs: number } | undefined;
}

const round = (v: number) => +v.toFixed(1);
export function quantiles(values: number[]): Quantiles {
  return {
    p50Ms: round(percentile(values, 50)),
    p99Ms: round(percentile(values, 99)),
    maxMs: round(Math.max(...values)),
  };
}

/** performance.now() of this process as epoch ms (the other processes stamp with Date.now()). */
const epoch = (t: number) => performance.timeOrigin + t;

export async function streamNamespaces(opts: {
  admin: KubeConfig;
  rate: number;
  durationSeconds: number;
  prefix: string;
  labels: Record<string, string>;
  /** Absent: nothing of ours runs, and a namespace is done when its `default` ServiceAccount exists. */
  secretName?: string | undefined;
  /** The functions' queue: hops of each namespace's first job (worker runtime; SCF keeps the same history). */
  queue?: Queue;
  timeoutMs?: number;
}): Promise<LatencyResult> {
  const names = Array.from(
    { length: Math.round(opts.rate * opts.durationSeconds) },
    (_, i) => `${opts.prefix}-${i}`,
  );
  const set = new Set(names);
  const obs = new ServiceAccountObserver(
    opts.admin,
    () => (opts.secretName ? [opts.secretName] : []),
    (ns) => set.has(ns),
  );
  await obs.start();
  const kube = listWatchOf(opts.admin);
  // The connection opened before the clock starts (as a client that has talked to the API server before).
  await kube.get('/version', { signal: AbortSignal.timeout(10_000) });
  const sent = new Map<string, number>();
  const returned = new Map<string, number>();
  const t0 = performance.now();
  await Promise.all(
    names.map(async (name, i) => {
      const due = t0 + (i * 1000) / opts.rate;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      sent.set(name, performance.now());
      await kube.post(
        '/api/v1/namespaces',
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: opts.labels } },
        { signal: AbortSignal.timeout(30_000) },
      );
      returned.set(name, performance.now());
    }),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  while (names.some((n) => !obs.converged.has(n))) {
    if (Date.now() > deadline)
      throw new Error(`latency: ${names.filter((n) => !obs.converged.has(n)).length} not converged`);
    await new Promise((r) => setTimeout(r, 50));
  }
  obs.stop();
  const loadAtEnd = +(os.loadavg()[0] ?? 0).toFixed(2);
  const conv = (n: string) => obs.converged.get(n) as number;
  const result: LatencyResult = {
    rate: opts.rate,
    durationSeconds: opts.durationSeconds,
    namespaces: names.length,
    createdToConverged: quantiles(names.map((n) => conv(n) - (sent.get(n) as number))),
    serviceAccountSeenToConverged: quantiles(names.map((n) => conv(n) - (obs.appeared.get(n) as number))),
    createCall: quantiles(names.map((n) => (returned.get(n) as number) - (sent.get(n) as number))),
    serviceAccountAppears: quantiles(
      names.map((n) => (obs.appeared.get(n) as number) - (sent.get(n) as number)),
    ),
    loadAtEnd,
    clientTimes: (n) =>
      sent.has(n) && obs.converged.has(n)
        ? { sentMs: epoch(sent.get(n) as number), convergedMs: epoch(conv(n)) }
        : undefined,
  };
  if (opts.queue) {
    const hops = await jobHops(
      opts.queue,
      names,
      (n) => epoch(sent.get(n) as number),
      (n) => epoch(conv(n)),
    );
    result.jobsFound = hops.found;
    result.hops = hops.quantiles;
  }
  return result;
}

/**
 * Each namespace's first namespace job, from the queue's completed history: created → the relay saw it
 * (API server write and watch delivery), → added to the queue (the relay's flush), → picked up by a worker,
 * → finished (the job's reads and writes), → the observer saw the namespace converged (the observer's watch;
 * negative when something else, e.g. the ServiceAccount, came after the job).
 */
async function jobHops(
  queue: Queue,
  names: string[],
  sentAt: (ns: string) => number,
  convergedAt: (ns: string) => number,
): Promise<{ found: number; quantiles: Record<string, { p50Ms: number; p99Ms: number }> }> {
  const wanted = new Set(names);
  const first = new Map<string, Job>();
  const jobs = await queue.getJobs(['completed'], 0, 5000, true);
  for (const job of jobs) {
    const key = (job.data as { key?: { kind?: string; name?: string } }).key;
    if (key?.kind !== 'namespace' || !key.name || !wanted.has(key.name)) continue;
    const seen = first.get(key.name);
    if (!seen || (job.processedOn ?? 0) < (seen.processedOn ?? 0)) first.set(key.name, job);
  }
  const hops: Record<string, number[]> = {
    'created → relay saw the namespace': [],
    'relay saw → job added': [],
    'job added → picked up': [],
    'picked up → finished (reads, writes)': [],
    'job finished → observer saw converged (negative: converged before the job ended)': [],
  };
  const push = (k: string, v: number) => hops[k]?.push(v);
  for (const [ns, job] of first) {
    const at = (job.data as { at: number }).at;
    push('created → relay saw the namespace', at - sentAt(ns));
    push('relay saw → job added', job.timestamp - at);
    push('job added → picked up', (job.processedOn ?? Number.NaN) - job.timestamp);
    push('picked up → finished (reads, writes)', (job.finishedOn ?? Number.NaN) - (job.processedOn ?? 0));
    push(
      'job finished → observer saw converged (negative: converged before the job ended)',
      convergedAt(ns) - (job.finishedOn ?? Number.NaN),
    );
  }
  return {
    found: first.size,
    quantiles: Object.fromEntries(
      Object.entries(hops).map(([k, v]) => [
        k,
        { p50Ms: round(percentile(v, 50)), p99Ms: round(percentile(v, 99)) },
      ]),
    ),
  };
}
