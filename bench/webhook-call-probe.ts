// Where one admission call's time goes, without a control plane: our admission server (the real handler,
// a fixed view) answered over TLS on loopback by a keep-alive client, at a low rate (a call every
// --interval ms, as the low-load stream) and back to back (hot). Prints the client's round trip and the
// handler's own time. Usage: npx tsx bench/webhook-call-probe.ts [calls] [intervalMs]
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createWebhookMetrics } from '../webhook/metrics.js';
import { createAdmissionServer } from '../webhook/server.js';
import type { AdmissionView } from '../webhook/view.js';
import { issueCertificate } from '../webhook/x509.js';
import { percentile } from './observe.js';

const calls = Number(process.argv[2] ?? 120);
const intervalMs = Number(process.argv[3] ?? 500);

const now = Date.now();
const cert = issueCertificate({
  commonName: 'probe',
  notBefore: new Date(now - 60_000),
  notAfter: new Date(now + 3_600_000),
  isCa: false,
  ipAddresses: ['127.0.0.1'],
});
const view = {
  synced: true,
  imagePullSecrets: [{ name: 'ips', deleting: false, spec: { namespaces: '*' } }],
  namespace: (name: string) => ({ name, labels: { 'kubernetes.io/metadata.name': name }, annotations: {} }),
  waitForNamespace: async () => undefined,
} as unknown as AdmissionView;
const metrics = createWebhookMetrics();
const server = createAdmissionServer({ view, metrics, log: pino({ level: 'warn' }), namespaceWaitMs: 20 });
server.setCertificate(cert);
await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
const port = (server.server.address() as AddressInfo).port;
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: cert.certPem });

function review(i: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${i}`,
      kind: { group: '', version: 'v1', kind: 'ServiceAccount' },
      resource: { group: '', version: 'v1', resource: 'serviceaccounts' },
      requestKind: { group: '', version: 'v1', kind: 'ServiceAccount' },
      requestResource: { group: '', version: 'v1', resource: 'serviceaccounts' },
      name: 'default',
      namespace: `ns-${i}`,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:service-account-controller',
        uid: '3c9f1e43-7f0c-4d67-9e0a-0b1d2f3c4d5e',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: {
        kind: 'ServiceAccount',
        apiVersion: 'v1',
        metadata: {
          name: 'default',
          namespace: `ns-${i}`,
          creationTimestamp: null,
          managedFields: [
            {
              manager: 'kube-controller-manager',
              operation: 'Update',
              apiVersion: 'v1',
              time: new Date().toISOString(),
              fieldsType: 'FieldsV1',
              fieldsV1: {},
            },
          ],
        },
      },
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

function call(i: number): Promise<number> {
  const body = review(i);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate-serviceaccounts?timeout=10s',
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - started));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const inside = async () => {
  const h = (await metrics.registry.getSingleMetric('tcr_webhook_admission_duration_seconds')?.get()) as {
    values: { metricName?: string; value: number }[];
  };
  const sum = h.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const count = h.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
  return { sum, count };
};

async function stream(label: string, n: number, gapMs: number) {
  const before = await inside();
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    rtts.push(await call(i));
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  const after = await inside();
  const insideMean = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
  console.log(
    `${label}: ${n} calls, round trip mean ${mean(rtts).toFixed(2)} / p50 ${percentile(rtts, 50).toFixed(2)} / p99 ${percentile(rtts, 99).toFixed(2)} ms; inside mean ${insideMean.toFixed(3)} ms`,
  );
}

await stream('warm-up', 50, 0);
await stream(`every ${intervalMs} ms`, calls, intervalMs);
await stream('back to back', calls, 0);
agent.destroy();
await server.close();
