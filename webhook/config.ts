import os from 'node:os';
import { z } from 'zod';
import { CommonEnv, ms, port, seconds } from '../shared/config.js';

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

const DAY = 86_400;

export const WebhookEnv = CommonEnv.pick({ KUBECONFIG: true, KUBE_CONTEXT: true, LOG_LEVEL: true }).extend({
  /** Where the API server reaches the webhook (HTTPS). */
  WEBHOOK_HOST: z.string().default('0.0.0.0'),
  WEBHOOK_PORT: port.default(8443),
  /** /healthz, /readyz, /metrics (plain HTTP). */
  HTTP_PORT: port.default(8080),
  /** A request for a namespace the view has not seen yet waits this long for it (then: unchanged). */
  NAMESPACE_WAIT_MS: ms('NAMESPACE_WAIT_MS', 0).default(1000),
  WATCHDOG_SILENCE_MS: ms('WATCHDOG_SILENCE_MS', 1000).default(150_000),
  /** After SIGTERM: keep answering this long while the Service stops sending (not ready), then exit. */
  SHUTDOWN_DELAY_MS: ms('SHUTDOWN_DELAY_MS', 0).default(3000),
  /**
   * cert-manager mode: a folder with tls.crt and tls.key (re-read every check). Unset: the webhook keeps
   * its own CA and certificate in WEBHOOK_SECRET and injects the caBundle into WEBHOOK_CONFIGURATION.
   */
  WEBHOOK_TLS_DIR: z.string().min(1).optional(),
  WEBHOOK_NAMESPACE: z.string().min(1).default('tcr-assistant-system'),
  WEBHOOK_SECRET: z.string().min(1).default('tcr-assistant-webhook-tls'),
  /** The MutatingWebhookConfiguration to inject; empty: do not inject (someone else does). */
  WEBHOOK_CONFIGURATION: z.string().default('tcr-assistant'),
  /** Names in the serving certificate: the Service's DNS name (how the API server calls it). */
  WEBHOOK_DNS_NAMES: list.default(['tcr-assistant-webhook.tcr-assistant-system.svc']),
  WEBHOOK_IP_SANS: list.default([]),
  /**
   * Full certificate check (renewal by date; the caBundle too): every 10 minutes. A caBundle someone resets
   * is re-injected as its watch event arrives (docs/adr-009-admission-webhook.md).
   */
  CERT_CHECK_MS: ms('CERT_CHECK_MS', 100).default(600_000),
  CA_VALIDITY_SECONDS: seconds('CA_VALIDITY_SECONDS', 10).default(5 * 365 * DAY),
  CA_RENEW_BEFORE_SECONDS: seconds('CA_RENEW_BEFORE_SECONDS', 1).default(365 * DAY),
  CERT_VALIDITY_SECONDS: seconds('CERT_VALIDITY_SECONDS', 10).default(90 * DAY),
  CERT_RENEW_BEFORE_SECONDS: seconds('CERT_RENEW_BEFORE_SECONDS', 1).default(30 * DAY),
  /** A new CA is used for serving only after it has been in the caBundle this long. */
  CA_PROPAGATION_SECONDS: seconds('CA_PROPAGATION_SECONDS', 0).default(15 * 60),
  CERT_BACKDATE_SECONDS: seconds('CERT_BACKDATE_SECONDS', 0).default(5 * 60),
  POD_NAME: z.string().default(`${os.hostname()}-${process.pid}`),
});
export type WebhookEnv = z.infer<typeof WebhookEnv>;
