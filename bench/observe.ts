import { readdirSync, readFileSync } from 'node:fs';
import { CoreV1Api, type KubeConfig, Watch } from '@kubernetes/client-node';
import type { Queue } from 'bullmq';

interface SaEvent {
  metadata?: { name?: string; namespace?: string };
  imagePullSecrets?: { name?: string }[];
}

/**
 * An observer watch on ServiceAccounts and on the Secrets they should name (admin, not part of the system
 * under test): records, per namespace, when its `default` ServiceAccount appeared, when it first listed one
 * of `secretNames`, when that Secret existed, and when both held (`converged`). With the admission webhook a
 * ServiceAccount carries the entry from birth: only the Secret's arrival then says the namespace can pull.
 */
export class ServiceAccountObserver {
  readonly appeared = new Map<string, number>();
  readonly carrying = new Map<string, number>();
  readonly secretSeen = new Map<string, number>();
  readonly converged = new Map<string, number>();
  private readonly controllers: AbortController[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly secretNames: () => string[],
    private readonly interesting: (namespace: string) => boolean,
  ) {}

  async start(resourceVersion?: string): Promise<void> {
    const mark = (ns: string) => {
      const a = this.carrying.get(ns);
      const b = this.secretSeen.get(ns);
      if (a !== undefined && b !== undefined && !this.converged.has(ns))
        this.converged.set(ns, Math.max(a, b));
    };
    const handle = (type: string, sa: SaEvent) => {
      const ns = sa.metadata?.namespace ?? '';
      if (sa.metadata?.name !== 'default' || !this.interesting(ns) || type === 'DELETED') return;
      const now = performance.now();
      if (!this.appeared.has(ns)) {
        this.appeared.set(ns, now);
        // Nothing to wait for (the control plane alone, bench/production.ts): the ServiceAccount is the end.
        if (this.secretNames().length === 0) this.converged.set(ns, now);
      }
      const names = (sa.imagePullSecrets ?? []).map((r) => r.name);
      if (!this.carrying.has(ns) && this.secretNames().some((s) => names.includes(s))) {
        this.carrying.set(ns, now);
        mark(ns);
      }
    };
    const handleSecret = (type: string, secret: SaEvent) => {
      const ns = secret.metadata?.namespace ?? '';
      if (type !== 'ADDED' || !this.interesting(ns) || this.secretSeen.has(ns)) return;
      const now = performance.now();
      this.secretSeen.set(ns, now);
      mark(ns);
    };
    const loop = async (path: string, query: Record<string, unknown>, onEvent: typeof handle) => {
      for (;;) {
        await new Promise<void>((resolve) => {
          new Watch(this.kc)
            .watch(
              path,
              { allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}), ...query },
              onEvent,
              () => resolve(),
            )
            .then(
              (c) => {
                this.controllers.push(c);
              },
              () => resolve(),
            );
        });
        if (this.stopped) return;
      }
    };
    void loop('/api/v1/serviceaccounts', {}, handle);
    for (const name of this.secretNames())
      void loop('/api/v1/secrets', { fieldSelector: `metadata.name=${name}` }, handleSecret);
    await new Promise((r) => setTimeout(r, 300));
  }

  private stopped = false;
  stop(): void {
    this.stopped = true;
    for (const c of this.controllers) c.abort();
  }
}

/**
 * The moment (`performance.now()`) every Secret named `name` carries `want` as its pull config: one LIST, then a
 * watch from its resourceVersion (after a dropped watch, again). The same observer for ours and the floor's
 * rotations. A poll every 200 ms did this before: it added 0–200 ms to a 1–2 s rotation at random, and re-listed
 * thousands of Secrets on the API server the rewrites were timed on.
 */
export async function waitAllSecretsCarry(kc: KubeConfig, name: string, want: string): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${name}`;
  for (;;) {
    const list = await core.listSecretForAllNamespaces({ fieldSelector });
    const pending = new Set(
      list.items
        .filter((s) => s.data?.['.dockerconfigjson'] !== want)
        .map((s) => s.metadata?.namespace ?? ''),
    );
    if (pending.size === 0) return performance.now();
    const doneAt = await new Promise<number | undefined>((resolve) => {
      let controller: AbortController | undefined;
      let finished = false;
      const onEvent = (
        type: string,
        s: { metadata?: { namespace?: string }; data?: Record<string, string> },
      ) => {
        if (finished || (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED')) return;
        const ns = s.metadata?.namespace ?? '';
        if (type === 'DELETED' || s.data?.['.dockerconfigjson'] === want) pending.delete(ns);
        else pending.add(ns);
        if (pending.size > 0) return;
        finished = true;
        resolve(performance.now());
        controller?.abort();
      };
      new Watch(kc)
        .watch(
          '/api/v1/secrets',
          { fieldSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
          onEvent,
          () => resolve(undefined),
        )
        .then(
          (c) => {
            controller = c;
            if (finished) c.abort();
          },
          () => resolve(undefined),
        );
    });
    if (doneAt !== undefined) return doneAt;
  }
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
export async function runPool<T>(
  items: T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** apiserver_request_total by "VERB resource". */
export function parseRequestTotals(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '';
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    const sub = /subresource="([^"]*)"/.exec(line)?.[1] ?? '';
    const key = `${verb} ${resource}${sub ? `/${sub}` : ''}`;
    totals.set(key, (totals.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return totals;
}

export function diffTotals(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

/**
 * Waits until the queue has no job waiting, active, prioritized or delayed (three looks in a row). Job
 * schedulers always keep their next run delayed: only other delayed jobs (status refreshes) count.
 */
export async function waitQueueIdle(queue: Queue, intervalMs = 200): Promise<void> {
  for (let idle = 0; idle < 3; ) {
    const c = await queue.getJobCounts('waiting', 'active', 'prioritized');
    const delayed = (await queue.getDelayed()).filter((j) => !j.repeatJobKey).length;
    idle = Object.values(c).reduce((a, b) => a + b, 0) + delayed === 0 ? idle + 1 : 0;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number | string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** CPU seconds by executable name of every process whose command line names `dir` (a control plane's or a
 * stack's folder), plus this process under `selfLabel`. */
export function cpuByProcessUnder(dir: string, selfLabel = 'probe'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!cmd.some((a) => a.includes(dir))) continue;
      const name = (cmd[0] ?? '?').split('/').pop() ?? '?';
      out[name] = (out[name] ?? 0) + cpuSecondsOf(pid);
    } catch {
      // gone meanwhile
    }
  }
  out[selfLabel] = cpuSecondsOf(process.pid);
  return out;
}

/** The benchmark's `.dockerconfigjson` (base64) for one password: the floor's Secrets and what ours must carry. */
export function benchDockerConfig(password: string): string {
  return Buffer.from(
    JSON.stringify({
      auths: {
        'bench.tencentcloudcr.com': {
          username: 'bench',
          password,
          auth: Buffer.from(`bench:${password}`).toString('base64'),
        },
      },
    }),
  ).toString('base64');
}
