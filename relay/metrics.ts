import { Counter, Gauge, Registry } from 'prom-client';
import { createWatchMetrics } from '../shared/kube/watch-metrics.js';
import { collectProcessMetrics } from '../shared/process-metrics.js';

/** The relay's Prometheus metrics. */
export function createRelayMetrics(registry = new Registry()) {
  collectProcessMetrics(registry, 'tcr_relay_');
  return {
    registry,
    ...createWatchMetrics(
      registry,
      {
        events: 'tcr_relay_events_total',
        dropped: 'tcr_relay_events_dropped_total',
        restarts: 'tcr_relay_watch_restarts_total',
        relists: 'tcr_relay_relists_total',
        lastEventAge: 'tcr_relay_last_event_age_seconds',
      },
      'the relay',
    ),
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
  };
}
export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
