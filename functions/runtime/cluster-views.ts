import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { parseEnv } from '../../shared/config.js';
import { OUR_SECRETS_SELECTOR } from '../../shared/contracts/labels.js';
import { describeError } from '../../shared/errors.js';
import { listWatchOf } from '../../shared/kube/client-node-connection.js';
import {
  imagePullSecretCollection,
  namespaceCollection,
  secretCollection,
  serviceAccountCollection,
} from '../../shared/kube/collections.js';
import type { WatchMetrics } from '../../shared/kube/resource-watcher.js';
import { createWatchMetrics } from '../../shared/kube/watch-metrics.js';
import { enqueueJobs } from '../../shared/queue.js';
import { ClusterView } from '../adapters/kube/cluster-view.js';
import type { ViewObserver } from '../adapters/kube/viewed-cluster.js';
import type { FunctionsRuntime } from './build-runtime.js';
import { namespaceToRepair, SecretWatchEnv, secretRepairs, watchOurSecrets } from './secret-watch.js';

// The worker runtime's watches: the view its namespace and ServiceAccount jobs read (docs/adr-015-cluster-view.md),
// whose watch of our Secrets also drives the repair of Secrets deleted or edited by hand (ADR-012). With
// CLUSTER_VIEW=off, only the repair watch runs and every job reads live. The SCF drain and the CLI never
// use a view: they have no process that lives between jobs to keep one.

export const ClusterViewEnv = z.object({
  /** `off`: jobs read the API server on every run (the repair watch alone still runs, SECRET_WATCH permitting). */
  CLUSTER_VIEW: z.enum(['on', 'off']).default('on'),
});

export interface WorkerWatches {
  stop(): Promise<void>;
}

interface ViewMetrics {
  watch: WatchMetrics;
  reads: Counter<'cluster' | 'kind' | 'result'>;
  reruns: Counter<'cluster' | 'kind'>;
  behind: Counter<'cluster'>;
  views: Set<ClusterView>;
}

const metricsByRegistry = new WeakMap<Registry, ViewMetrics>();

function metricsOf(registry: Registry): ViewMetrics {
  const known = metricsByRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const views = new Set<ClusterView>();
  const metrics: ViewMetrics = {
    watch: createWatchMetrics(
      registry,
      {
        events: 'tcr_view_watch_events_total',
        dropped: 'tcr_view_watch_dropped_total',
        restarts: 'tcr_view_watch_restarts_total',
        relists: 'tcr_view_relists_total',
      },
      'the worker view',
    ),
    reads: new Counter({
      name: 'tcr_view_reads_total',
      help: 'Reads of namespace and ServiceAccount jobs: hit (from the view), miss (not in it: read live), fallback (view not usable: read live).',
      labelNames: ['cluster', 'kind', 'result'],
      registers,
    }),
    reruns: new Counter({
      name: 'tcr_view_reruns_total',
      help: 'Jobs enqueued again because the view received a newer version of what they had planned from.',
      labelNames: ['cluster', 'kind'],
      registers,
    }),
    behind: new Counter({
      name: 'tcr_view_behind_total',
      help: 'Secret rewrites or deletions refused (the job retried) because the view of the CRs was behind.',
      labelNames: ['cluster'],
      registers,
    }),
    views,
  };
  new Gauge({
    name: 'tcr_view_objects',
    help: 'Objects held by the worker view, by cluster and kind.',
    labelNames: ['cluster', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const view of views)
        for (const [kind, n] of Object.entries(view.sizes())) this.set({ cluster: view.clusterId, kind }, n);
    },
  });
  metricsByRegistry.set(registry, metrics);
  return metrics;
}

function observerFor(metrics: ViewMetrics, cluster: string): ViewObserver {
  return {
    read: (kind, result) => metrics.reads.inc({ cluster, kind, result }),
    rerun: (kind) => metrics.reruns.inc({ cluster, kind }),
    behind: () => metrics.behind.inc({ cluster }),
  };
}

/**
 * Starts the worker's views (one per cluster served) and hands them to the runtime's namespace and
 * ServiceAccount jobs; their Secret watches also repair our Secrets (unless SECRET_WATCH=off or `repair` is
 * false). Jobs that run before a view has listed read live.
 */
export async function startWorkerWatches(
  rt: FunctionsRuntime,
  options: { repair?: boolean } = {},
  clusters: readonly string[] = rt.fleet.clusters.map((c) => c.id),
): Promise<WorkerWatches> {
  if (parseEnv(ClusterViewEnv).CLUSTER_VIEW === 'off') {
    return options.repair === false ? { stop: async () => {} } : watchOurSecrets(rt, clusters);
  }
  const repairOn = options.repair !== false && parseEnv(SecretWatchEnv).SECRET_WATCH === 'on';
  const metrics = metricsOf(rt.metrics.registry);
  const started: ClusterView[] = [];
  for (const cluster of clusters) {
    const { kc } = await rt.connect(cluster);
    const api = listWatchOf(kc);
    const log = rt.log.child({ watch: 'view', cluster });
    const repair = repairOn ? secretRepairs(rt, cluster) : undefined;
    const view = new ClusterView({
      clusterId: cluster,
      collections: {
        namespace: namespaceCollection(api),
        serviceaccount: serviceAccountCollection(api),
        imagepullsecret: imagePullSecretCollection(api),
        secret: secretCollection(api, OUR_SECRETS_SELECTOR),
      },
      enqueue: (items) => {
        enqueueJobs(rt.queue, items).catch((error: unknown) =>
          // The relay's next event or resync covers it; the view only closes a race.
          log.warn({ jobs: items.length, err: describeError(error) }, 'view: enqueue of a rerun failed'),
        );
      },
      onSecretChange: repair
        ? (change) => {
            const ns = namespaceToRepair(change.type, change.key, change.object);
            if (ns) repair(ns, change.type === 'deleted' ? 'deleted' : 'modified');
          }
        : undefined,
      log,
      watchMetrics: metrics.watch,
      observer: observerFor(metrics, cluster),
    });
    view.start();
    rt.views.set(cluster, view);
    metrics.views.add(view);
    started.push(view);
  }
  rt.log.info(
    { clusters, repair: repairOn },
    'worker view: namespace and ServiceAccount jobs read from watches (our Secrets repaired at once)',
  );
  return {
    async stop() {
      for (const view of started) {
        if (rt.views.get(view.clusterId) === view) rt.views.delete(view.clusterId);
        metrics.views.delete(view);
      }
      await Promise.all(started.map((v) => v.stop()));
    },
  };
}
