import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { WatchMetrics } from '../shared/kube/resource-watcher.js';

/** The admission webhook's Prometheus metrics. */
export function createWebhookMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'tcr_webhook_' });
  const lastEventAt = new Map<string, number>();
  const watch: WatchMetrics = {
    events: new Counter({
      name: 'tcr_webhook_watch_events_total',
      help: 'Watch events received by the view, by kind and type.',
      labelNames: ['kind', 'type'],
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'tcr_webhook_watch_events_dropped_total',
      help: 'Watch events that changed nothing the webhook looks at.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: 'tcr_webhook_watch_restarts_total',
      help: 'Watch restarts, by kind and reason (closed, silent, error).',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    relists: new Counter({
      name: 'tcr_webhook_relists_total',
      help: 'Full lists at start or after 410 Gone, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sawEvent(kind: string) {
      lastEventAt.set(kind, Date.now());
    },
  };
  new Gauge({
    name: 'tcr_webhook_last_event_age_seconds',
    help: 'Seconds since the view last heard from a watch (bookmarks included), by kind.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, at] of lastEventAt) this.set({ kind }, (Date.now() - at) / 1000);
    },
  });
  return {
    registry,
    watch,
    admissions: new Counter({
      name: 'tcr_webhook_admissions_total',
      help: 'Admission requests answered, by operation and outcome (patched, unchanged, not-selected, own-write, namespace-unknown, not-synced, invalid).',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    }),
    entriesAdded: new Counter({
      name: 'tcr_webhook_entries_added_total',
      help: 'imagePullSecrets entries added to ServiceAccounts at admission.',
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'tcr_webhook_admission_duration_seconds',
      help: 'Time from request received to answer sent, by operation.',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    namespaceWaits: new Counter({
      name: 'tcr_webhook_namespace_waits_total',
      help: 'Requests for a namespace the view had not seen yet, by result (seen, timeout).',
      labelNames: ['result'],
      registers: [registry],
    }),
    viewObjects: new Gauge({
      name: 'tcr_webhook_view_objects',
      help: 'Objects in the in-memory view, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'tcr_webhook_certificate_expiry_timestamp_seconds',
      help: 'When the serving certificate in use expires (Unix time).',
      registers: [registry],
    }),
    certificateRenewals: new Counter({
      name: 'tcr_webhook_certificate_renewals_total',
      help: 'Writes of the certificate Secret (new CA and/or serving certificate).',
      registers: [registry],
    }),
    certificateErrors: new Counter({
      name: 'tcr_webhook_certificate_errors_total',
      help: 'Failed certificate checks (Secret or configuration unreadable, write refused).',
      registers: [registry],
    }),
    caBundleInjections: new Counter({
      name: 'tcr_webhook_cabundle_injections_total',
      help: 'Patches of the MutatingWebhookConfiguration caBundle.',
      registers: [registry],
    }),
  };
}
export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
