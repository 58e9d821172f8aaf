import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { FIELD_MANAGER } from '../shared/contracts/labels.js';
import { abortable, linkSignals } from '../shared/deadline.js';
import { KubeApiError, type KubeClient } from '../shared/kube/kube-client.js';
import {
  type Collection,
  ResourceWatcher,
  type WatchedObject,
  type WatchMetrics,
} from '../shared/kube/resource-watcher.js';
import type { WebhookMetrics } from './metrics.js';
import {
  type CertificatePolicy,
  type CertificateState,
  type CertView,
  isCertificatePlanEmpty,
  planCertificates,
} from './plan-certificates.js';
import { issueCertificate } from './x509.js';

// The imperative shell around planCertificates: read the Secret, plan, write it back (guarded by its
// resourceVersion: replicas race at start and only one write wins; the others re-read), serve what it holds,
// and keep the caBundle of our MutatingWebhookConfiguration equal to its CA bundle.

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

export interface KeeperOptions {
  /** The webhook's identity on the light transport (shared/kube/kube-client.ts). */
  kube: KubeClient;
  /** Self-managed: the Secret holding CA and serving certificate (shipped empty, filled here). */
  secret?: { namespace: string; name: string } | undefined;
  /** ...and the MutatingWebhookConfiguration whose webhooks get our caBundle. */
  configurationName?: string | undefined;
  /** cert-manager: a mounted folder with tls.crt and tls.key (renewed by cert-manager, re-read here). */
  tlsDir?: string | undefined;
  policy: CertificatePolicy;
  /**
   * Renewals by date, and a catch-all: a full check this often (jittered ±20 %). A reset caBundle does not wait
   * for it when `configurationWatch` is given.
   */
  checkEveryMs: number;
  /**
   * The watch of `configurationName` (list/watch by name): a caBundle reset by an `apply` or `helm upgrade`
   * is re-injected as the change arrives, not at the next check.
   */
  configurationWatch?:
    | { collection: Collection; metrics: WatchMetrics; watchdogSilenceMs: number }
    | undefined;
  log: Logger;
  metrics: WebhookMetrics;
  onServing: (cert: ServingCertificate) => void;
}

const CA_NAME = 'tcr-assistant-webhook-ca';
const SERVING_NAME = 'tcr-assistant-webhook';

const pemBlocks = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

/** The parts of a Secret and of a MutatingWebhookConfiguration the keeper reads (the rest is kept as read). */
const SecretBody = z.looseObject({
  metadata: z.looseObject({ resourceVersion: z.string().optional() }).optional(),
  data: z.record(z.string(), z.string()).nullish(),
});
const WebhookConfiguration = z.looseObject({
  webhooks: z
    .array(
      z.looseObject({ name: z.string(), clientConfig: z.looseObject({ caBundle: z.string().optional() }) }),
    )
    .nullish(),
});
const secretPath = (ref: { namespace: string; name: string }) =>
  `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/secrets/${encodeURIComponent(ref.name)}`;
const configurationPath = (name: string) =>
  `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;
const isStatus = (error: unknown, code: number) => error instanceof KubeApiError && error.code === code;

/** How long one certificate check may take (reads and writes of the Secret and the configuration). */
const CHECK_TIMEOUT_MS = 30_000;
/** IPv6 written as Node prints it in subjectAltName (8 groups, no leading zeros), IPv4 unchanged. */
export function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

function viewOf(cert: X509Certificate, issuerId?: string): CertView {
  const sans = (cert.subjectAltName ?? '').split(', ').filter(Boolean);
  return {
    id: cert.fingerprint256,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    issuerId,
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ipAddresses: sans.filter((s) => s.startsWith('IP Address:')).map((s) => canonicalIp(s.slice(11))),
  };
}

/** The public key (SPKI, base64) of a private key PEM or of a certificate's public KeyObject. */
const spkiOf = (key: string | KeyObject) =>
  (typeof key === 'string' ? createPublicKey(key) : key)
    .export({ type: 'spki', format: 'der' })
    .toString('base64');

export interface StoredCertificates {
  state: CertificateState;
  cas: { pem: string; cert: X509Certificate }[];
  caKeyPem?: string | undefined;
  servingPem?: string | undefined;
  servingKeyPem?: string | undefined;
}

/** Parses what the Secret holds; anything unreadable counts as absent (and is replaced). */
export function readStoredCertificates(data: Record<string, string>): StoredCertificates {
  const text = (key: string) => (data[key] ? Buffer.from(data[key], 'base64').toString('utf8') : '');
  const cas: StoredCertificates['cas'] = [];
  for (const pem of pemBlocks(text('ca.crt'))) {
    try {
      cas.push({ pem: pem.endsWith('\n') ? pem : `${pem}\n`, cert: new X509Certificate(pem) });
    } catch {
      // an unreadable bundle entry is dropped
    }
  }
  const caKeyPem = text('ca.key') || undefined;
  let caKeyOf: string | undefined;
  try {
    if (caKeyPem) {
      const spki = spkiOf(caKeyPem);
      caKeyOf = cas.find((c) => spkiOf(c.cert.publicKey) === spki)?.cert.fingerprint256;
    }
  } catch {
    caKeyOf = undefined;
  }
  const servingPem = text('tls.crt') || undefined;
  const servingKeyPem = text('tls.key') || undefined;
  let serving: CertView | undefined;
  let servingKeyMatches = false;
  try {
    if (servingPem) {
      const cert = new X509Certificate(servingPem);
      const issuer = cas.find((c) => cert.checkIssued(c.cert) && cert.verify(c.cert.publicKey));
      serving = viewOf(cert, issuer?.cert.fingerprint256);
      servingKeyMatches = servingKeyPem !== undefined && spkiOf(servingKeyPem) === spkiOf(cert.publicKey);
    }
  } catch {
    serving = undefined;
  }
  return {
    state: { cas: cas.map((c) => viewOf(c.cert)), caKeyOf, serving, servingKeyMatches },
    cas,
    caKeyPem,
    servingPem,
    servingKeyPem,
  };
}

/** Carries out a plan: the Secret's new data (base64 values), or undefined when nothing changes. */
export function renewCertificates(
  stored: StoredCertificates,
  now: number,
  policy: CertificatePolicy,
): { data: Record<string, string>; reasons: string[] } | undefined {
  const plan = planCertificates(stored.state, now, policy);
  if (isCertificatePlanEmpty(plan, stored.state)) return undefined;
  const notBefore = new Date(now - policy.backdateMs);
  let cas = stored.cas.filter((c) => plan.keepCas.includes(c.cert.fingerprint256)).map((c) => c.pem);
  let caKeyPem = stored.caKeyPem;
  let caPem = stored.cas.find((c) => c.cert.fingerprint256 === stored.state.caKeyOf)?.pem;
  if (plan.newCa) {
    const ca = issueCertificate({
      commonName: CA_NAME,
      notBefore,
      notAfter: new Date(now + policy.caValidityMs),
      isCa: true,
    });
    cas = [ca.certPem, ...cas];
    caKeyPem = ca.keyPem;
    caPem = ca.certPem;
  }
  let servingPem = stored.servingPem;
  let servingKeyPem = stored.servingKeyPem;
  if (plan.newServing && caPem && caKeyPem) {
    const serving = issueCertificate({
      commonName: SERVING_NAME,
      notBefore,
      notAfter: new Date(now + policy.servingValidityMs),
      isCa: false,
      dnsNames: policy.dnsNames,
      ipAddresses: policy.ipAddresses,
      issuer: { certPem: caPem, keyPem: caKeyPem, commonName: CA_NAME },
    });
    servingPem = serving.certPem;
    servingKeyPem = serving.keyPem;
  }
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'utf8').toString('base64');
  return {
    data: {
      'ca.crt': b64(cas.join('')),
      'ca.key': b64(caKeyPem),
      'tls.crt': b64(servingPem),
      'tls.key': b64(servingKeyPem),
    },
    reasons: plan.reasons,
  };
}

/**
 * Keeps the serving certificate: at start and every `checkEveryMs`, renews it when the plan says so,
 * hands it to the TLS server when it changed, and re-injects the caBundle if someone reset it (an
 * `kubectl apply` or `helm upgrade` of the configuration with an empty one).
 */
export class CertificateKeeper {
  private timer: NodeJS.Timeout | undefined;
  private loaded: string | undefined;
  private running: Promise<void> | undefined;
  private failing = false;
  /** The CA bundle (PEM) last read from the Secret: what the configuration's caBundle must be. */
  private bundle = '';
  private readonly stopping = new AbortController();
  /** A check was asked for while one ran: run another when it ends. */
  private again = false;
  private readonly watcher: ResourceWatcher<'mutatingwebhookconfiguration'> | undefined;

  constructor(private readonly opts: KeeperOptions) {
    const watch = opts.configurationWatch;
    if (watch && opts.configurationName && !opts.tlsDir) {
      this.watcher = new ResourceWatcher(
        {
          kind: 'mutatingwebhookconfiguration',
          keyOf: (obj) => obj.metadata?.name ?? '',
          // Only what we keep: the caBundle of each webhook.
          fingerprintOf: (obj) => JSON.stringify(caBundlesOf(obj)),
          ...watch.collection,
        },
        {
          watchdogSilenceMs: watch.watchdogSilenceMs,
          onChange: (change) => {
            if (change.type === 'deleted' || !change.object || !this.bundle) return;
            const ours = Buffer.from(this.bundle, 'utf8').toString('base64');
            // Our own injection (or another replica's, with a bundle we will read) comes back here too: only
            // a caBundle that is not ours sends us to check (read the Secret, then re-inject if still stale).
            if (caBundlesOf(change.object).some((b) => b !== ours)) this.checkSoon();
          },
          log: opts.log,
          metrics: watch.metrics,
        },
      );
    }
  }

  /** A serving certificate is loaded. */
  get ready(): boolean {
    return this.loaded !== undefined;
  }

  start(): void {
    const tick = () => {
      this.checkSoon();
      // Replicas check at slightly different moments, so they rarely race for the same write.
      this.timer = setTimeout(tick, this.opts.checkEveryMs * (0.8 + 0.4 * Math.random()));
    };
    tick();
    this.watcher?.start();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.stopping.abort();
    await this.watcher?.stop();
    await this.running;
  }

  /** A check now, or right after the one running (never two at once). */
  private checkSoon(): void {
    if (this.stopping.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.checkOnce().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.checkSoon();
      }
    });
  }

  /** One check; errors are logged once per failing streak and retried at the next check. */
  async checkOnce(): Promise<void> {
    // A check that hangs on the API server must not hold the next one (nor a stop): 30 s each.
    const { signal, unlink } = linkSignals([this.stopping.signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]);
    try {
      if (this.opts.tlsDir) await this.loadFromFiles(this.opts.tlsDir);
      else await abortable(this.keepSecret(signal), signal, 'serving certificate check');
      if (this.failing) this.opts.log.info('serving certificate checks succeed again');
      this.failing = false;
    } catch (error) {
      this.opts.metrics.certificateErrors.inc();
      if (!this.failing)
        this.opts.log.warn({ err: describeApiError(error) }, 'serving certificate check failed');
      this.failing = true;
    } finally {
      unlink();
    }
  }

  private async loadFromFiles(dir: string): Promise<void> {
    const [certPem, keyPem] = await Promise.all([
      readFile(path.join(dir, 'tls.crt'), 'utf8'),
      readFile(path.join(dir, 'tls.key'), 'utf8'),
    ]);
    this.serve({ certPem, keyPem });
  }

  private async keepSecret(signal: AbortSignal): Promise<void> {
    const ref = this.opts.secret;
    if (!ref) throw new Error('no Secret configured for the serving certificate');
    for (let attempt = 1; ; attempt++) {
      const secret = await this.opts.kube
        .get(secretPath(ref), { signal, schema: SecretBody })
        .catch((error: unknown) => {
          if (isStatus(error, 404))
            throw new Error(
              `Secret ${ref.namespace}/${ref.name} not found: the chart ships it empty (templates/webhook-certificate.yaml) and the webhook fills it`,
            );
          throw error;
        });
      const stored = readStoredCertificates(secret.data ?? {});
      const renewed = renewCertificates(stored, Date.now(), this.opts.policy);
      if (!renewed) {
        this.serveStored(stored);
        break;
      }
      try {
        const written = await this.opts.kube.put(
          secretPath(ref),
          { ...secret, data: renewed.data },
          { query: { fieldManager: FIELD_MANAGER }, signal, schema: SecretBody },
        );
        this.opts.log.info({ reasons: renewed.reasons }, 'serving certificate renewed');
        this.opts.metrics.certificateRenewals.inc();
        this.serveStored(readStoredCertificates(written.data ?? {}));
        break;
      } catch (error) {
        // Another replica wrote first: use what it wrote (next loop reads it).
        if (!isStatus(error, 409) || attempt >= 3) throw error;
      }
    }
    if (this.opts.configurationName) await this.injectCaBundle(this.opts.configurationName, signal);
  }

  private serveStored(stored: StoredCertificates): void {
    if (!stored.servingPem || !stored.servingKeyPem) return;
    this.serve({ certPem: stored.servingPem, keyPem: stored.servingKeyPem });
    this.bundle = stored.cas.map((c) => c.pem).join('');
    const serving = stored.state.serving;
    if (serving) this.opts.metrics.certificateExpiry.set(serving.notAfter / 1000);
  }

  private serve(cert: ServingCertificate): void {
    if (cert.certPem === this.loaded) return;
    this.opts.onServing(cert);
    this.loaded = cert.certPem;
  }

  private async injectCaBundle(name: string, signal: AbortSignal): Promise<void> {
    if (!this.bundle) return;
    const caBundle = Buffer.from(this.bundle, 'utf8').toString('base64');
    const config = await this.opts.kube.get(configurationPath(name), {
      signal,
      schema: WebhookConfiguration,
    });
    const stale = (config.webhooks ?? []).filter((w) => w.clientConfig.caBundle !== caBundle);
    if (stale.length === 0) return;
    // Strategic merge by webhook name: only our caBundle changes, whoever owns the rest.
    await this.opts.kube.patch(
      configurationPath(name),
      { webhooks: stale.map((w) => ({ name: w.name, clientConfig: { caBundle } })) },
      {
        query: { fieldManager: FIELD_MANAGER },
        contentType: 'application/strategic-merge-patch+json',
        signal,
      },
    );
    this.opts.metrics.caBundleInjections.inc();
    this.opts.log.info({ configuration: name, webhooks: stale.length }, 'caBundle injected');
  }
}

/** The caBundle of each webhook of a MutatingWebhookConfiguration (as the watch delivers it). */
function caBundlesOf(obj: WatchedObject): string[] {
  const webhooks = (obj as { webhooks?: { clientConfig?: { caBundle?: string } }[] }).webhooks ?? [];
  return webhooks.map((w) => w.clientConfig?.caBundle ?? '');
}

function describeApiError(error: unknown): string {
  // A KubeApiError's message is the method, path, status and the Status message: never a header or body sent.
  return error instanceof Error ? error.message : String(error);
}
