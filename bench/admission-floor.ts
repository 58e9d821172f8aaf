import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { findFreePort } from '../infra/local/free-port.js';
import { REPO_ROOT } from '../infra/local/paths.js';
import { startProcess, waitUntilReady } from '../infra/local/processes.js';
import { issueCertificate } from '../webhook/x509.js';

// The admission floor (`--admission-floor`): webhooks that admit without looking, one in Node
// (bench/noop-webhook.mjs) and one in Go (bench/noop-webhook.go, the API server's own stack), registered for
// the same ServiceAccount CREATEs as ours (same selector, timeout and failure policy). The API server calls
// each of them for every `default` ServiceAccount of the burst and times each in the same histogram (label
// `name`): what any webhook costs on this machine before a line of our code runs, next to what ours costs.

export type FloorRuntime = 'node' | 'go';
export const floorWebhookName = (runtime: FloorRuntime) => `${runtime}.floor.bench.tcr-assistant.local`;

export interface AdmissionFloor {
  stop(): Promise<void>;
}

/** The Go floor's binary, built into `dir` (standard library only: nothing is downloaded). */
function buildGoFloor(dir: string): string {
  const binary = path.join(dir, 'noop-webhook');
  execFileSync('go', ['build', '-o', binary, path.join(REPO_ROOT, 'bench', 'noop-webhook.go')], {
    env: { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off', GOFLAGS: '' },
    stdio: 'inherit',
  });
  return binary;
}

/** Starts a no-op webhook and registers it for CREATEs of ServiceAccounts in namespaces with `labels`. */
export async function startAdmissionFloor(
  admin: KubeConfig,
  labels: Record<string, string>,
  runtime: FloorRuntime,
): Promise<AdmissionFloor> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tcr-bench-floor-${runtime}-`));
  const configuration = `tcr-assistant-bench-floor-${runtime}`;
  const now = Date.now();
  const ca = issueCertificate({
    commonName: 'bench floor CA',
    isCa: true,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
  });
  const serving = issueCertificate({
    commonName: '127.0.0.1',
    isCa: false,
    ipAddresses: ['127.0.0.1'],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    issuer: { ...ca, commonName: 'bench floor CA' },
  });
  writeFileSync(path.join(dir, 'tls.crt'), serving.certPem);
  writeFileSync(path.join(dir, 'tls.key'), serving.keyPem);
  const port = await findFreePort();
  const proc = startProcess({
    name: `bench-noop-webhook-${runtime}`,
    ...(runtime === 'node'
      ? { command: process.execPath, args: [path.join(REPO_ROOT, 'bench', 'noop-webhook.mjs')] }
      : { command: buildGoFloor(dir), args: [] }),
    logFile: path.join(dir, 'noop-webhook.log'),
    cleanupDir: dir,
    env: {
      ...process.env,
      CERT_FILE: path.join(dir, 'tls.crt'),
      KEY_FILE: path.join(dir, 'tls.key'),
      PORT: String(port),
    },
  });
  const connects = () =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  await waitUntilReady(proc, connects, 10_000, 'listening');
  const api = admin.makeApiClient(AdmissionregistrationV1Api);
  await api.deleteMutatingWebhookConfiguration({ name: configuration }).catch(() => {});
  await api.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: configuration },
      webhooks: [
        {
          name: floorWebhookName(runtime),
          admissionReviewVersions: ['v1'],
          clientConfig: {
            url: `https://127.0.0.1:${port}/`,
            caBundle: Buffer.from(ca.certPem).toString('base64'),
          },
          rules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE'],
              resources: ['serviceaccounts'],
              scope: 'Namespaced',
            },
          ],
          namespaceSelector: { matchLabels: labels },
          failurePolicy: 'Ignore',
          sideEffects: 'None',
          timeoutSeconds: 2,
          reinvocationPolicy: 'Never',
          matchPolicy: 'Equivalent',
        },
      ],
    },
  });
  return {
    async stop() {
      await api.deleteMutatingWebhookConfiguration({ name: configuration }).catch(() => {});
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
