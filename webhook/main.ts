// The admission webhook: `node /app/webhook.cjs` in its Deployment (the image's bundle, built by
// infra/scripts/build-bundles.mjs), or `tsx webhook/main.ts` locally.
// It gives ServiceAccounts our imagePullSecrets entries as they are created, from a watch-fed view
// (docs/adr-009-admission-webhook.md). Configuration from the environment (webhook/config.ts).
import { parseEnv } from '../shared/config.js';
import { describeError } from '../shared/errors.js';
import { serveHealthHttp } from '../shared/http-server.js';
import { webhookConfigurationCollection } from '../shared/kube/collections.js';
import { connectionOf, KubeClient } from '../shared/kube/kube-client.js';
import { loadKubeTarget } from '../shared/kube/kube-target.js';
import { createLogger } from '../shared/logging.js';
import { CertificateKeeper } from './certificate-keeper.js';
import { WebhookEnv } from './config.js';
import { createWebhookMetrics } from './metrics.js';
import { createAdmissionServer } from './server.js';
import { AdmissionView } from './view.js';

async function main(): Promise<void> {
  const env = parseEnv(WebhookEnv);
  const log = createLogger('webhook', env.LOG_LEVEL).child({ identity: env.POD_NAME });
  // The light transport, not client-node (whose KubeConfig alone is most of a process's RSS, issue #15).
  const kube = new KubeClient(
    connectionOf(loadKubeTarget({ kubeconfig: env.KUBECONFIG, context: env.KUBE_CONTEXT })),
  );
  const metrics = createWebhookMetrics();
  const view = new AdmissionView({ api: kube, log, metrics, watchdogSilenceMs: env.WATCHDOG_SILENCE_MS });
  const admission = createAdmissionServer({ view, metrics, log, namespaceWaitMs: env.NAMESPACE_WAIT_MS });
  let listening = false;
  const keeper = new CertificateKeeper({
    kube,
    ...(env.WEBHOOK_TLS_DIR
      ? { tlsDir: env.WEBHOOK_TLS_DIR }
      : {
          secret: { namespace: env.WEBHOOK_NAMESPACE, name: env.WEBHOOK_SECRET },
          configurationName: env.WEBHOOK_CONFIGURATION || undefined,
        }),
    policy: {
      caValidityMs: env.CA_VALIDITY_SECONDS * 1000,
      caRenewBeforeMs: env.CA_RENEW_BEFORE_SECONDS * 1000,
      servingValidityMs: env.CERT_VALIDITY_SECONDS * 1000,
      servingRenewBeforeMs: env.CERT_RENEW_BEFORE_SECONDS * 1000,
      propagationMs: env.CA_PROPAGATION_SECONDS * 1000,
      backdateMs: env.CERT_BACKDATE_SECONDS * 1000,
      dnsNames: env.WEBHOOK_DNS_NAMES,
      ipAddresses: env.WEBHOOK_IP_SANS,
    },
    checkEveryMs: env.CERT_CHECK_MS,
    configurationWatch:
      env.WEBHOOK_CONFIGURATION && !env.WEBHOOK_TLS_DIR
        ? {
            collection: webhookConfigurationCollection(kube, env.WEBHOOK_CONFIGURATION),
            metrics: metrics.watch,
            watchdogSilenceMs: env.WATCHDOG_SILENCE_MS,
          }
        : undefined,
    log,
    metrics,
    onServing: (cert) => {
      admission.setCertificate(cert);
      log.info('serving certificate loaded');
      // Listen only once there is a certificate to present.
      if (listening) return;
      listening = true;
      admission.server.listen(env.WEBHOOK_PORT, env.WEBHOOK_HOST, () =>
        log.info({ host: env.WEBHOOK_HOST, port: env.WEBHOOK_PORT }, 'admission webhook listening'),
      );
    },
  });
  admission.server.on('error', (error) => {
    log.error({ err: error.message, port: env.WEBHOOK_PORT }, 'cannot serve admission requests');
    process.exit(1);
  });
  let stopping = false;
  const health = await serveHealthHttp(env.HTTP_PORT, metrics.registry, () => {
    if (stopping) return { ready: false, detail: 'stopping' };
    if (!view.synced) return { ready: false, detail: 'view syncing' };
    if (!keeper.ready) return { ready: false, detail: 'no serving certificate yet' };
    return { ready: true, detail: 'serving' };
  });
  view.start();
  keeper.start();
  log.info({ port: env.HTTP_PORT }, 'webhook started');

  const shutdown = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    stopping = true;
    // Endpoints drop a pod that is not ready after a while: keep answering until then.
    await new Promise((r) => setTimeout(r, env.SHUTDOWN_DELAY_MS));
    await keeper.stop();
    await admission.close();
    await view.stop();
    health.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(`webhook: ${describeError(error)}`);
  process.exit(1);
});
