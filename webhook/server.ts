import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { AdmissionReview, admissionResponse, decideServiceAccount } from './admission.js';
import type { ServingCertificate } from './certificate-keeper.js';
import type { WebhookMetrics } from './metrics.js';
import type { AdmissionView } from './view.js';

export const SERVICE_ACCOUNTS_PATH = '/mutate-serviceaccounts';
/** An AdmissionReview of a ServiceAccount is a few KiB; anything this big is not one. */
const MAX_BODY = 3 * 1024 * 1024;

export interface AdmissionServerOptions {
  view: AdmissionView;
  metrics: WebhookMetrics;
  log: Logger;
  /** How long a request may wait for the view to see its namespace (well under the API server's timeout). */
  namespaceWaitMs: number;
}

/** Answers one AdmissionReview POST. Never throws: a bad request gets 400 and the API server ignores us. */
export async function handleAdmission(
  req: IncomingMessage,
  res: ServerResponse,
  opts: AdmissionServerOptions,
): Promise<void> {
  const started = process.hrtime.bigint();
  if (req.method !== 'POST' || req.url?.split('?')[0] !== SERVICE_ACCOUNTS_PATH) {
    res.statusCode = 404;
    res.end();
    return;
  }
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (error) {
    return fail(res, opts, `request body is not JSON: ${error instanceof Error ? error.message : error}`);
  }
  const review = AdmissionReview.safeParse(body);
  if (!review.success) {
    return fail(res, opts, `not an admission.k8s.io/v1 AdmissionReview: ${review.error.issues[0]?.message}`);
  }
  const request = review.data.request;
  const namespaceName = request.namespace ?? '';
  let namespace = opts.view.namespace(namespaceName);
  if (!namespace && opts.view.synced && request.operation === 'CREATE') {
    namespace = await opts.view.waitForNamespace(namespaceName, opts.namespaceWaitMs);
    opts.metrics.namespaceWaits.inc({ result: namespace ? 'seen' : 'timeout' });
  }
  const decision = decideServiceAccount(request, {
    synced: opts.view.synced,
    crs: opts.view.imagePullSecrets,
    namespace,
  });
  const answer = JSON.stringify(admissionResponse(request.uid, decision));
  res.setHeader('Content-Type', 'application/json');
  res.end(answer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  opts.metrics.duration.observe({ operation: request.operation }, seconds);
  opts.metrics.admissions.inc({ operation: request.operation, outcome: decision.outcome });
  if (decision.added.length > 0) opts.metrics.entriesAdded.inc(decision.added.length);
  if (decision.outcome === 'namespace-unknown' || decision.outcome === 'not-synced') {
    opts.log.info(
      { namespace: namespaceName, operation: request.operation, outcome: decision.outcome },
      'admitted unchanged: the job path will add the entries',
    );
  } else if (opts.log.isLevelEnabled('debug')) {
    const sa = (request.object as { metadata?: { name?: string } } | undefined)?.metadata?.name;
    opts.log.debug(
      {
        namespace: namespaceName,
        serviceAccount: sa,
        operation: request.operation,
        ...decision,
        patch: undefined,
      },
      'admitted',
    );
  }
}

function fail(res: ServerResponse, opts: AdmissionServerOptions, message: string): void {
  opts.metrics.admissions.inc({ operation: 'unknown', outcome: 'invalid' });
  opts.log.warn({ err: message }, 'bad admission request');
  res.statusCode = 400;
  res.setHeader('Content-Type', 'text/plain');
  res.end(message);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error(`larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface AdmissionServer {
  server: https.Server;
  /** Serves a new certificate from the next TLS handshake on. */
  setCertificate(cert: ServingCertificate): void;
  close(): Promise<void>;
}

/** The HTTPS server the API server calls; it starts without a certificate and is given one by the keeper. */
export function createAdmissionServer(opts: AdmissionServerOptions): AdmissionServer {
  const server = https.createServer({ minVersion: 'TLSv1.2' }, (req, res) => {
    handleAdmission(req, res, opts).catch((error: unknown) => {
      opts.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'admission failed');
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  });
  server.on('secureConnection', () => opts.metrics.connections.inc());
  // The API server keeps connections open between calls; never let an idle one outlive us by much.
  server.keepAliveTimeout = 60_000;
  return {
    server,
    setCertificate(cert) {
      server.setSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
