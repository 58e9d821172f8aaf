import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** The relay's Prometheus metrics. */
export function createRelayMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'tcr_relay_' });
  const lastEventAt = new Map<string, number>();
  return {
    registry,
    events: new Counter({
      name: 'tcr_relay_events_total',
      help: 'Watch events received, by kind and type (ADDED, MODIFIED, DELETED, BOOKMARK).',
      labelNames: ['kind', 'type'],
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'tcr_relay_events_dropped_total',
      help: 'MODIFIED events dropped because nothing reconcile looks at changed.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    enqueued: new Counter({
      name: 'tcr_relay_jobs_enqueued_total',
      help: 'Jobs handed to the queue, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    coalesced: new Counter({
      name: 'tcr_relay_jobs_coalesced_total',
      help: 'Job requests merged into one already pending in the relay.',
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: 'tcr_relay_watch_restarts_total',
      help: 'Watch restarts, by kind and reason (closed, silent, error).',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    relists: new Counter({
      name: 'tcr_relay_relists_total',
      help: 'Full lists after 410 Gone or at start, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    queueLost: new Counter({
      name: 'tcr_relay_queue_lost_total',
      help: 'Times the queue was found emptied under the relay (Redis restarted empty or flushed): each is a full resync.',
      registers: [registry],
    }),
    queueServerChanged: new Counter({
      name: 'tcr_relay_queue_server_changed_total',
      help: 'Times another Redis server answered for the queue (failover, restart): each is a full resync.',
      registers: [registry],
    }),
    redisErrors: new Counter({
      name: 'tcr_relay_redis_errors_total',
      help: 'Failed attempts to hand jobs to Redis.',
      registers: [registry],
    }),
    dirtyKeys: new Gauge({
      name: 'tcr_relay_dirty_keys',
      help: 'Keys waiting to be handed to Redis.',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'tcr_relay_leader',
      help: '1 while this replica holds the Lease and relays.',
      registers: [registry],
    }),
    lastEventAge: new Gauge({
      name: 'tcr_relay_last_event_age_seconds',
      help: 'Seconds since the last watch event (bookmarks included), by kind.',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        for (const [kind, at] of lastEventAt) this.set({ kind }, (Date.now() - at) / 1000);
      },
    }),
    sawEvent(kind: string) {
      lastEventAt.set(kind, Date.now());
    },
  };
}
export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
