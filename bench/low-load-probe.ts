// `npx tsx bench/low-load-probe.ts [RATE] [SECONDS]`: where one new namespace's time goes at low load, inside
// the namespace job. Streams namespaces at RATE/s (default 2 for 30 s) through the local pipeline (in-process
// worker, admission webhook on) and splits each namespace's first job at its API calls: picked up → the
// Secret's POST sent (the job's reads), the POST itself, the POST answered → the job finished (failure
// bookkeeping, status enqueue, audit, BullMQ's completion); plus the worker view's hits and misses and every
// API call the worker made, by verb. Diagnostic only: it times the adapter's calls by wrapping them.

import type { Job } from 'bullmq';
import { KubeCluster } from '../functions/adapters/kube/kube-cluster.js';
import { ViewedCluster } from '../functions/adapters/kube/viewed-cluster.js';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { startLocalStack, waitForRelay } from '../infra/local/stack.js';
import { secretNameFor } from '../shared/contracts/names.js';
import { streamNamespaces } from './latency.js';
import { waitQueueIdle } from './observe.js';

const rate = Number(process.argv[2] ?? 2);
const seconds = Number(process.argv[3] ?? 30);

/** Every call of the live adapter: what, for which namespace, when it was sent and answered (epoch ms). */
const calls: { what: string; namespace: string; sent: number; answered: number }[] = [];
/** The same for the worker view's reads (`view.<method>`): when the job started reading, and when it was done. */
const viewCalls: typeof calls = [];
function wrap(prototype: object, into: typeof calls, skip: string[]) {
  const proto = prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of Object.getOwnPropertyNames(prototype)) {
    if (Object.getOwnPropertyDescriptor(prototype, method)?.get) continue;
    const original = proto[method];
    if (method === 'constructor' || typeof original !== 'function' || skip.includes(method)) continue;
    proto[method] = function (this: unknown, ...args: unknown[]) {
      const first = args[0];
      const namespace =
        typeof first === 'string' ? first : ((first as { namespace?: string } | undefined)?.namespace ?? '');
      const sent = performance.timeOrigin + performance.now();
      const result = original.apply(this, args);
      if (!(result instanceof Promise)) return result;
      return result.finally(() =>
        into.push({ what: method, namespace, sent, answered: performance.timeOrigin + performance.now() }),
      );
    };
  }
}
wrap(KubeCluster.prototype, calls, ['withSignal', 'opts', 'call', 'rawList']);
wrap(ViewedCluster.prototype, viewCalls, []);

const stack = await startLocalStack({
  clusterId: 'probe',
  statusDelayMs: 5000,
  relayEnv: { LOG_LEVEL: 'warn' },
});
try {
  await waitForRelay(stack);
  const labels = { probe: 'yes' };
  await createImagePullSecret(stack.admin, 'probe', {
    namespaces: '*',
    serviceAccounts: '*',
    namespaceSelector: { matchLabels: labels },
    docker: { server: 'probe.tencentcloudcr.com', username: 'probe', password: 'v1' },
  });
  await waitQueueIdle(stack.functions.queue, 60);
  calls.length = 0;
  const r = await streamNamespaces({
    admin: stack.admin,
    rate,
    durationSeconds: seconds,
    prefix: 'low',
    labels,
    secretName: secretNameFor('probe'),
    queue: stack.functions.queue,
  });
  await waitQueueIdle(stack.functions.queue, 60);
  console.log(`created → converged ${JSON.stringify(r.createdToConverged)}`);
  console.log(
    `create call ${JSON.stringify(r.createCall)}; default ServiceAccount seen ${JSON.stringify(r.serviceAccountAppears)}`,
  );
  console.log(`hops ${JSON.stringify(r.hops)}`);

  const first = new Map<string, Job>();
  for (const job of await stack.functions.queue.getJobs(['completed'], 0, 5000, true)) {
    const key = (job.data as { key?: { kind?: string; name?: string } }).key;
    if (key?.kind !== 'namespace' || !key.name?.startsWith('low-')) continue;
    const seen = first.get(key.name);
    if (!seen || (job.processedOn ?? 0) < (seen.processedOn ?? 0)) first.set(key.name, job);
  }
  const split: Record<string, number[]> = {
    'picked up → first read (BullMQ hand-over, payload, deadline, dependencies)': [],
    'first read → reads done (the worker view)': [],
    'reads done → POST sent (plan, body)': [],
    'picked up → POST sent': [],
    'POST sent → answered': [],
    'POST answered → job finished': [],
  };
  const liveBeforePost: Record<string, number> = {};
  for (const [ns, job] of first) {
    const post = calls.find(
      (c) => c.what === 'createSecret' && c.namespace === ns && c.sent >= (job.processedOn ?? 0) - 1,
    );
    if (!post || job.processedOn === undefined || job.finishedOn === undefined) continue;
    split['picked up → POST sent']?.push(post.sent - job.processedOn);
    const reads = viewCalls.filter(
      (c) =>
        c.what !== 'createSecret' &&
        c.sent >= job.processedOn! - 1 &&
        c.sent < post.sent &&
        (c.namespace === ns || c.namespace === ''),
    );
    if (reads.length > 0) {
      const start = Math.min(...reads.map((c) => c.sent));
      const done = Math.max(...reads.map((c) => c.answered));
      split['picked up → first read (BullMQ hand-over, payload, deadline, dependencies)']?.push(
        start - job.processedOn,
      );
      split['first read → reads done (the worker view)']?.push(done - start);
      split['reads done → POST sent (plan, body)']?.push(post.sent - done);
    }
    split['POST sent → answered']?.push(post.answered - post.sent);
    split['POST answered → job finished']?.push(job.finishedOn - post.answered);
    for (const c of calls)
      if (c.namespace === ns && c.sent >= job.processedOn - 1 && c.sent < post.sent)
        liveBeforePost[c.what] = (liveBeforePost[c.what] ?? 0) + 1;
  }
  const pct = (v: number[], p: number) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length === 0
      ? Number.NaN
      : +(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0).toFixed(1);
  };
  for (const [k, v] of Object.entries(split))
    console.log(
      `  ${k}: p50 ${pct(v, 50)} ms, p90 ${pct(v, 90)} ms, p99 ${pct(v, 99)} ms (${v.length} jobs)`,
    );
  console.log(`  live calls of first jobs before their POST: ${JSON.stringify(liveBeforePost)}`);
  const byWhat: Record<string, number> = {};
  for (const c of calls) byWhat[c.what] = (byWhat[c.what] ?? 0) + 1;
  console.log(
    `  every live call during the stream, per namespace: ${JSON.stringify(Object.fromEntries(Object.entries(byWhat).map(([k, v]) => [k, +(v / r.namespaces).toFixed(2)])))}`,
  );
  const metrics = await stack.functions.metrics.registry.metrics();
  console.log(
    metrics
      .split('\n')
      .filter((l: string) => l.startsWith('tcr_view_reads_total') || l.startsWith('tcr_view_reruns_total'))
      .join('\n'),
  );
} finally {
  await stack.stop();
}
