import { Counter, Gauge, type Registry } from 'prom-client';

/** The names a part gives the shared watch loop's counters (its dashboards and alerts use them). */
export interface WatchMetricNames {
  events: string;
  dropped: string;
  restarts: string;
  relists: string;
  /** A gauge of seconds since the last event per kind, if the part exports one. */
  lastEventAge?: string;
}

/**
 * The counters ResourceWatcher reports to (shared/kube/resource-watcher.ts WatchMetrics), declared once for
 * every part that watches: the relay, the webhook's view, the worker's watch of our Secrets.
 */
export function createWatchMetrics(registry: Registry, names: WatchMetricNames, subject: string) {
  const registers = [registry];
  const lastEventAt = new Map<string, number>();
  return {
    events: new Counter({
      name: names.events,
      help: `Watch events received by ${subject}, by kind and type (ADDED, MODIFIED, DELETED, BOOKMARK).`,
      labelNames: ['kind', 'type'],
      registers,
    }),
    dropped: new Counter({
      name: names.dropped,
      help: `Watch events dropped by ${subject}: they changed nothing it looks at.`,
      labelNames: ['kind'],
      registers,
    }),
    watchRestarts: new Counter({
      name: names.restarts,
      help: `Watch restarts of ${subject}, by kind and reason (closed, silent, error).`,
      labelNames: ['kind', 'reason'],
      registers,
    }),
    relists: new Counter({
      name: names.relists,
      help: `Full lists of ${subject} (start, 410 Gone, after an error, on a timer), by kind.`,
      labelNames: ['kind'],
      registers,
    }),
    lastEventAge: names.lastEventAge
      ? new Gauge({
          name: names.lastEventAge,
          help: `Seconds since ${subject} last heard from a watch (bookmarks included), by kind.`,
          labelNames: ['kind'],
          registers,
          collect() {
            for (const [kind, at] of lastEventAt) this.set({ kind }, (Date.now() - at) / 1000);
          },
        })
      : undefined,
    sawEvent(kind: string) {
      lastEventAt.set(kind, Date.now());
    },
  };
}
export type SharedWatchMetrics = ReturnType<typeof createWatchMetrics>;
