// `npx tsx bench/namespace-wait-probe.ts [N] [RATE]`: how often the controller-manager's `default`
// ServiceAccount create waits 50 ms in the API server's NamespaceLifecycle admission, on a control plane with
// nothing of ours on it (no relay, worker or webhook; the controller-manager at its default 20 QPS). Creates N
// namespaces (default 240) at RATE/s (default 2, the low-load stream's rate) and reads the API server's audit
// log (bench/namespace-path.ts). Diagnostic only.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../infra/local/control-plane.js';
import { auditArgs, readAuditLines } from './identities.js';
import { describeNamespacePaths, summarizeNamespacePaths } from './namespace-path.js';

const n = Number(process.argv[2] ?? 240);
const rate = Number(process.argv[3] ?? 2);
const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-namespace-wait-'));
const audit = auditArgs(dir);
const cp = await startControlPlane({
  name: 'namespace-wait',
  controllerManagerQps: 20,
  extraApiserverArgs: audit.args,
});
try {
  const admin = new KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  const core = admin.makeApiClient(CoreV1Api);
  const names = Array.from({ length: n }, (_, i) => `wait-${i}`);
  const load0 = os.loadavg()[0]?.toFixed(2);
  const t0 = performance.now();
  for (const [i, name] of names.entries()) {
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i * 1000) / rate - performance.now())));
    await core.createNamespace({ body: { metadata: { name } } });
  }
  // The audit log is written in batches (at most 1 s apart, bench/identities.ts).
  await new Promise((r) => setTimeout(r, 3000));
  const summary = summarizeNamespacePaths(readAuditLines(audit.logFile), new Set(names), '-');
  if (!summary) throw new Error('no namespace and ServiceAccount create pair in the audit log');
  console.log(
    `${new Date().toISOString()} — ${os.cpus().length} cores, load average ${load0} → ${os.loadavg()[0]?.toFixed(2)}; ${n} namespaces at ${rate}/s, control plane alone`,
  );
  console.log(describeNamespacePaths(summary));
} finally {
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
