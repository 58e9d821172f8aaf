import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { parseEnv } from '../../shared/config.js';
import type { Enqueue, JobKey } from '../../shared/contracts/jobs.js';
import { FIELD_MANAGER, OUR_SECRETS_SELECTOR } from '../../shared/contracts/labels.js';
import { SECRET_PREFIX } from '../../shared/contracts/names.js';
import { describeError } from '../../shared/errors.js';
import { listWatchOf } from '../../shared/kube/client-node-connection.js';
import { secretCollection } from '../../shared/kube/collections.js';
import {
  type Change,
  ResourceWatcher,
  WatchExpiredError,
  type WatchedObject,
} from '../../shared/kube/resource-watcher.js';
import { createWatchMetrics, type SharedWatchMetrics } from '../../shared/kube/watch-metrics.js';
import { enqueueJobs } from '../../shared/queue.js';
import type { FunctionsRuntime } from './build-runtime.js';

// Our pull Secrets deleted or edited by hand (docs/adr-012-secret-repair.md). The relay cannot read Secrets,
// and RBAC has no metadata-only verb for them, so the signal comes from the functions' own identity, which
// already lists and writes them: a watch of our Secrets (label selector) in the long-running worker, and a
// catch-up from the last seen resourceVersion at each SCF invocation. Each deletion, and each change some
// other writer made (managedFields names another manager), becomes the job of that Secret's namespace,
// which re-plans it: level-triggered, so a false alarm costs one converged job and no write.

export const SecretWatchEnv = z.object({
  /** `off`: no watch of our Secrets (a Secret deleted by hand then waits for the next CR job or resync). */
  SECRET_WATCH: z.enum(['on', 'off']).default('on'),
});

/** A change to one of our Secrets that the functions must look at (namespace to reconcile), if any. */
export function namespaceToRepair(
  type: 'added' | 'modified' | 'deleted',
  key: string,
  object: WatchedObject | undefined,
): string | undefined {
  const [namespace = '', name = ''] = key.split('/');
  if (!name.startsWith(SECRET_PREFIX) || namespace === '') return undefined;
  if (type === 'deleted') return namespace;
  return object && writtenByOthers(object) ? namespace : undefined;
}

/**
 * Whether anyone but us holds fields of the Secret (managedFields): `kubectl edit`, a script, a controller.
 * Our own writes (create, in-place rewrite) leave only our field manager, so they never trigger a job.
 */
export function writtenByOthers(object: WatchedObject): boolean {
  const entries = (object.metadata as { managedFields?: { manager?: string; operation?: string }[] })
    ?.managedFields;
  return (entries ?? []).some((e) => e.manager !== undefined && e.manager !== FIELD_MANAGER);
}

type SecretWatchMetrics = SharedWatchMetrics & { repairs: Counter<'cluster' | 'cause'> };

/** One set of counters per metrics registry (a runtime may watch several clusters). */
const metricsByRegistry = new WeakMap<Registry, SecretWatchMetrics>();

function metricsOf(registry: Registry): SecretWatchMetrics {
  const known = metricsByRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: SecretWatchMetrics = {
    ...createWatchMetrics(
      registry,
      {
        events: 'tcr_secret_watch_events_total',
        dropped: 'tcr_secret_watch_dropped_total',
        restarts: 'tcr_secret_watch_restarts_total',
        relists: 'tcr_secret_watch_relists_total',
      },
      'the watch of our Secrets',
    ),
    repairs: new Counter({
      name: 'tcr_secret_repairs_enqueued_total',
      help: 'Namespace jobs enqueued because one of our Secrets was deleted or changed by someone else.',
      labelNames: ['cluster', 'cause'],
      registers,
    }),
  };
  metricsByRegistry.set(registry, metrics);
  return metrics;
}

/** The repair of one cluster: namespace jobs for our Secrets deleted or edited by others (the view's watch uses it too). */
export function secretRepairs(rt: FunctionsRuntime, cluster: string) {
  return batcher(rt, cluster, metricsOf(rt.metrics.registry));
}

/** Hands namespace keys to the queue, a few milliseconds' worth at a time (deduplicated per key). */
function batcher(rt: FunctionsRuntime, cluster: string, metrics: SecretWatchMetrics) {
  const pending = new Map<string, Enqueue>();
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const items = [...pending.values()];
    pending.clear();
    try {
      await enqueueJobs(rt.queue, items);
    } catch (error) {
      // Not lost for good: the relay's resync (and its lost-queue check) covers whatever this misses.
      rt.log.warn({ cluster, jobs: items.length, err: describeError(error) }, 'secret watch: enqueue failed');
    }
  };
  return (namespace: string, cause: 'deleted' | 'modified') => {
    const key: JobKey = { cluster, kind: 'namespace', name: namespace };
    pending.set(namespace, { key, trigger: cause });
    metrics.repairs.inc({ cluster, cause });
    if (!scheduled) {
      scheduled = true;
      setTimeout(() => void flush(), 20);
    }
  };
}

export interface SecretWatch {
  stop(): Promise<void>;
}

/**
 * The worker runtime's watch of our Secrets in each cluster it serves (SECRET_WATCH=off disables it). Needs
 * `watch` on secrets: the same data the functions' `list` already returns, seen as it changes.
 */
export async function watchOurSecrets(
  rt: FunctionsRuntime,
  clusters: readonly string[] = rt.fleet.clusters.map((c) => c.id),
): Promise<SecretWatch> {
  const env = parseEnv(SecretWatchEnv);
  if (env.SECRET_WATCH === 'off') return { stop: async () => {} };
  const metrics = metricsOf(rt.metrics.registry);
  const watchers: ResourceWatcher<'secret'>[] = [];
  for (const cluster of clusters) {
    const { kc } = await rt.connect(cluster);
    const repair = batcher(rt, cluster, metrics);
    const watcher = new ResourceWatcher<'secret'>(
      {
        kind: 'secret',
        ...secretCollection(listWatchOf(kc), OUR_SECRETS_SELECTOR),
        keyOf: (obj) => `${obj.metadata?.namespace}/${obj.metadata?.name}`,
        // The resourceVersion: every change is looked at (namespaceToRepair decides), and no hash of
        // Secret data is kept.
        fingerprintOf: (obj) => obj.metadata?.resourceVersion ?? '',
      },
      {
        watchdogSilenceMs: 150_000,
        log: rt.log.child({ watch: 'secrets', cluster }),
        metrics,
        onChange: (change: Change) => {
          const ns = namespaceToRepair(change.type, change.key, change.object);
          if (ns) repair(ns, change.type === 'deleted' ? 'deleted' : 'modified');
        },
      },
    );
    watcher.start();
    watchers.push(watcher);
  }
  rt.log.info({ clusters }, 'watching our Secrets: one deleted or edited by hand is repaired at once');
  return {
    async stop() {
      await Promise.all(watchers.map((w) => w.stop()));
    },
  };
}

/** Where the SCF runtime keeps the resourceVersion its last catch-up reached, per cluster. */
export const secretWatchKey = (prefix: string, cluster: string) => `${prefix}:secret-watch:${cluster}`;

export interface CatchUpResult {
  cluster: string;
  /** Namespace jobs enqueued for Secrets deleted or changed by others since the last catch-up. */
  repairs: number;
  /** `start`: first run, nothing to compare; `gone`: the history was compacted, every CR resynced. */
  outcome: 'caught-up' | 'start' | 'gone';
}

/**
 * The SCF runtime's stand-in for the watch (no process lives between invocations): replays the changes to our
 * Secrets since the resourceVersion stored by the previous invocation, for `windowMs` (the API server sends
 * the backlog at once, then nothing), enqueues the repairs, and stores where it got. History older than the
 * API server keeps (410 Gone) resyncs every CR of the cluster instead.
 */
export async function catchUpSecretChanges(
  rt: FunctionsRuntime,
  cluster: string,
  windowMs = 1000,
): Promise<CatchUpResult> {
  const { kc, cluster: port } = await rt.connect(cluster);
  const stateKey = secretWatchKey(rt.env.QUEUE_PREFIX, cluster);
  const from = await rt.redis.get(stateKey);
  const secrets = secretCollection(listWatchOf(kc), OUR_SECRETS_SELECTOR);
  const startOver = async () => {
    const page = await secrets.listPage(undefined, AbortSignal.timeout(60_000));
    await rt.redis.set(stateKey, page.resourceVersion);
  };
  if (!from) {
    await startOver();
    return { cluster, repairs: 0, outcome: 'start' };
  }
  const namespaces = new Set<string>();
  let last = from;
  let gone = false;
  // The shared watch (shared/kube/collections.ts), replayed from where the last invocation got, for the
  // window: the API server sends the backlog at once, then only bookmarks.
  const window = new AbortController();
  const timer = setTimeout(() => window.abort(), windowMs + 500);
  try {
    await secretCollection(
      listWatchOf(kc),
      OUR_SECRETS_SELECTOR,
      Math.max(1, Math.round(windowMs / 1000)),
    ).watch(
      from,
      (type, obj) => {
        const rv = obj.metadata?.resourceVersion;
        if (rv) last = rv;
        if (type === 'BOOKMARK') return;
        const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
        const change = type === 'DELETED' ? 'deleted' : type === 'ADDED' ? 'added' : 'modified';
        const ns = namespaceToRepair(change, key, obj);
        if (ns) namespaces.add(ns);
      },
      window.signal,
    );
  } catch (error) {
    if (!(error instanceof WatchExpiredError)) throw error;
    gone = true;
  } finally {
    clearTimeout(timer);
  }
  if (gone) {
    // What changed since is unknown: every CR's fan-out compares every namespace (the relay's resync).
    const crs = await port.listImagePullSecrets();
    await enqueueJobs(
      rt.queue,
      crs.map((cr) => ({ key: { cluster, kind: 'imagepullsecret', name: cr.name }, trigger: 'resync' })),
    );
    await startOver();
    return { cluster, repairs: 0, outcome: 'gone' };
  }
  await enqueueJobs(
    rt.queue,
    [...namespaces].map((name) => ({ key: { cluster, kind: 'namespace', name }, trigger: 'modified' })),
  );
  await rt.redis.set(stateKey, last);
  return { cluster, repairs: namespaces.size, outcome: 'caught-up' };
}
