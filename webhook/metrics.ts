import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createWatchMetrics } from '../shared/kube/watch-metrics.js';
import { collectProcessMetrics } from '../shared/process-metrics.js';

/** The admission webhook's Prometheus metrics. */
export function createWebhookMetrics(registry = new Registry()) {
  collectProcessMetrics(registry, 'tcr_webhook_');
  const watch = createWatchMetrics(
    registry,
    {
      events: 'tcr_webhook_watch_events_total',
      dropped: 'tcr_webhook_watch_events_dropped_total',
      restarts: 'tcr_webhook_watch_restarts_total',
      relists: 'tcr_webhook_relists_total',
      lastEventAge: 'tcr_webhook_last_event_age_seconds',
    },
    "the webhook's view",
  );
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
    connections: new Counter({
      name: 'tcr_webhook_connections_total',
      help: 'TLS connections accepted (the API server keeps one open across calls; one per call means a handshake per call).',
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
