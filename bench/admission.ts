// Admission latency as the API server measures it (apiserver_admission_webhook_admission_duration_seconds,
// buckets 5 ms, 25 ms, 100 ms, ...) and as the webhook measures it (finer buckets), for the benchmark.

import type { WebhookProcess } from '../infra/local/webhook.js';

export interface Histogram {
  /** Cumulative counts by upper bound (seconds), ascending; the last is +Inf. */
  buckets: [number, number][];
  count: number;
  sum: number;
}

const labelsOf = (line: string) =>
  Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])) as Record<
    string,
    string
  >;

/** The sum of every series of histogram `name` whose labels include `match`. */
export function parseHistogram(text: string, name: string, match: Record<string, string> = {}): Histogram {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const labels = labelsOf(line);
    if (!Object.entries(match).every(([k, v]) => labels[k] === v)) continue;
    const value = Number(line.split(' ').pop());
    if (line.startsWith(`${name}_bucket{`)) {
      const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    } else if (line.startsWith(`${name}_count`)) count += value;
    else if (line.startsWith(`${name}_sum`)) sum += value;
  }
  return { buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]), count, sum };
}

/** What was observed between two readings. */
export function diffHistogram(after: Histogram, before: Histogram): Histogram {
  const prior = new Map(before.buckets);
  return {
    buckets: after.buckets.map(([le, c]) => [le, c - (prior.get(le) ?? 0)]),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/**
 * The q-quantile (0..1) in seconds, interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does: an estimate whose error is bounded by the bucket's width.
 */
export function quantile(h: Histogram, q: number): number {
  if (h.count === 0) return Number.NaN;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, c - below);
    }
    lower = le;
    below = c;
  }
  return lower;
}

/** Share of observations at or below `seconds` (exact when `seconds` is a bucket bound). */
export function shareAtMost(h: Histogram, seconds: number): number {
  const bucket = h.buckets.find(([le]) => le >= seconds);
  return h.count === 0 || !bucket ? Number.NaN : bucket[1] / h.count;
}

export const WEBHOOK_NAME = 'serviceaccounts.tcr.tencentcloudcr.com';

/** The API server's histogram of our webhook's CREATE admissions. */
export const apiserverWebhookHistogram = (metrics: string) =>
  parseHistogram(metrics, 'apiserver_admission_webhook_admission_duration_seconds', {
    name: WEBHOOK_NAME,
    operation: 'CREATE',
  });

export function failOpenCount(metrics: string): number {
  let total = 0;
  for (const line of metrics.split('\n'))
    if (
      line.startsWith('apiserver_admission_webhook_fail_open_count{') &&
      labelsOf(line).name === WEBHOOK_NAME
    )
      total += Number(line.split(' ').pop());
  return total;
}

/** What our webhook says of itself: its CREATE admissions' histogram, and its waits for a namespace by result. */
export async function readWebhookSelf(webhook: Pick<WebhookProcess, 'metrics' | 'metric'>) {
  return {
    server: parseHistogram(await webhook.metrics(), 'tcr_webhook_admission_duration_seconds', {
      operation: 'CREATE',
    }),
    waitsSeen: await webhook.metric('tcr_webhook_namespace_waits_total', { result: 'seen' }),
    waitsTimeout: await webhook.metric('tcr_webhook_namespace_waits_total', { result: 'timeout' }),
    connections: await webhook.metric('tcr_webhook_connections_total'),
  };
}

export interface StreamAdmissionSnapshot extends Awaited<ReturnType<typeof readWebhookSelf>> {
  api: Histogram;
}

/**
 * Our webhook's CREATE calls during a low-load stream: means (the API server's buckets are 5 ms wide, so its
 * quantiles say little at this scale), and how many requests found their namespace not yet in the view.
 */
export function describeStreamAdmission(before: StreamAdmissionSnapshot, after: StreamAdmissionSnapshot) {
  const api = diffHistogram(after.api, before.api);
  const server = diffHistogram(after.server, before.server);
  const meanMs = (h: Histogram) => (h.count === 0 ? Number.NaN : +((h.sum / h.count) * 1000).toFixed(2));
  return {
    calls: api.count,
    apiServerMeanMs: meanMs(api),
    insideMeanMs: meanMs(server),
    insideP99Ms: +(quantile(server, 0.99) * 1000).toFixed(2),
    namespaceWaits: after.waitsSeen - before.waitsSeen,
    namespaceWaitTimeouts: after.waitsTimeout - before.waitsTimeout,
    connections: after.connections - before.connections,
  };
}
