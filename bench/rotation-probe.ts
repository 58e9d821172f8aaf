// `npx tsx bench/rotation-probe.ts [N]`: where the time of a rotation goes. Converges N namespaces under one
// CR, changes its password, and splits the time until every Secret carries it into: the relay and queue hop
// (patch → CR job start), the CR job's reads and plan, its in-place rewrites, and the observer's poll. For
// the rotation and each bare loop: each write's own time (sent → answered) and the CPU each process of the
// control plane and this one (worker + observer) spent. BENCH_CPU_PROF_DIR=dir: a V8 CPU profile of this
// process over the rotation window only (`node bench/top-functions.mjs <file>` summarises it).

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { listAudit } from '../functions/adapters/audit-reader.js';
import { KubeCluster } from '../functions/adapters/kube/kube-cluster.js';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { startLocalStack, waitForRelay } from '../infra/local/stack.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import {
  benchDockerConfig,
  cpuByProcessUnder,
  runPool,
  waitAllSecretsCarry,
  waitQueueIdle,
} from './observe.js';

const n = Number(process.argv[2] ?? 1000);

/** Each in-place rewrite of the functions: sent → answered (ms), recorded while `timing` is on. */
const rewrites: number[] = [];
let timing = false;
const proto = KubeCluster.prototype as unknown as { replaceSecret: (...a: unknown[]) => Promise<void> };
const replace = proto.replaceSecret;
proto.replaceSecret = async function (this: unknown, ...args: unknown[]) {
  const t = performance.now();
  try {
    return await replace.apply(this, args);
  } finally {
    if (timing) rewrites.push(performance.now() - t);
  }
};
const pct = (v: number[], p: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length
    ? +(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0).toFixed(1)
    : Number.NaN;
};
const spread = (v: number[]) => `p50 ${pct(v, 50)} / p90 ${pct(v, 90)} / p99 ${pct(v, 99)} ms`;

const stack = await startLocalStack({ clusterId: 'probe', statusDelayMs: 5000 });
/** CPU seconds (user + system) of the control plane's processes (found by its directory) and of this one. */
const cpuOf = () => cpuByProcessUnder(stack.cluster.dir, 'this process (worker, relay client, observer)');
const cpuSince = (before: Record<string, number>) =>
  Object.entries(cpuOf())
    .map(([k, v]) => `${k} ${(v - (before[k] ?? 0)).toFixed(2)} s`)
    .join(', ');
try {
  const core = shareConnections(stack.admin).makeApiClient(CoreV1Api);
  const custom = stack.admin.makeApiClient(CustomObjectsApi);
  await waitForRelay(stack);
  // The benchmark's registry and user, so that `benchDockerConfig` is what our Secrets must carry.
  const docker = (password: string) => ({ server: 'bench.tencentcloudcr.com', username: 'bench', password });
  await createImagePullSecret(stack.admin, 'probe', {
    namespaces: '*',
    namespaceSelector: { matchLabels: { probe: 'yes' } },
    docker: docker('v1'),
  });
  const names = Array.from({ length: n }, (_, i) => `probe-${i}`);
  await runPool(names, 16, (name) =>
    core.createNamespace({ body: { metadata: { name, labels: { probe: 'yes' } } } }).then(() => undefined),
  );
  const secret = secretNameFor('probe');
  const count = async (password: string) =>
    (await core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${secret}` })).items.filter((s) =>
      Buffer.from(s.data?.['.dockerconfigjson'] ?? '', 'base64')
        .toString()
        .includes(`"password":"${password}"`),
    ).length;
  while ((await count('v1')) < n) await new Promise((r) => setTimeout(r, 500));
  // Converged includes the queue: the burst's ServiceAccount jobs would otherwise race the rotation.
  await waitQueueIdle(stack.functions.queue, 300);

  const profileDir = process.env.BENCH_CPU_PROF_DIR;
  const session = profileDir ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = cpuOf();
  timing = true;
  const t0 = Date.now();
  // The same instant on the clock `waitAllSecretsCarry` answers in: the patch's own round trip is counted.
  const p0 = performance.now();
  await custom.patchClusterCustomObject(
    {
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      name: 'probe',
      body: { spec: { docker: docker('v2') } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  // Observed by a watch, not a poll: a LIST of every Secret each 100 ms would be timed (and profiled) with it.
  const done =
    t0 + Math.round((await waitAllSecretsCarry(stack.admin, secret, benchDockerConfig('v2'))) - p0);
  timing = false;
  const rotationCpu = cpuSince(cpu0);
  if (session && profileDir) {
    const { profile } = await session.post('Profiler.stop');
    const file = path.join(profileDir, `rotation-probe-${n}-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`  CPU profile of the rotation window: ${file}`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const entries = (await listAudit(stack.functions.redis, stack.functions.auditKey, {}, 100_000)).filter(
    (e) => Date.parse(e.time) >= t0 - 50 && e.kind === 'imagepullsecret',
  );
  console.log(`N=${n}: patch → all ${n} Secrets carry the new password in ${done - t0} ms`);
  console.log(`  the CR job's ${rewrites.length} rewrites, each: ${spread(rewrites)}; CPU: ${rotationCpu}`);
  for (const e of entries) {
    const start = Date.parse(e.time) - t0;
    console.log(
      `  CR job (${e.trigger}) started +${start} ms, ran ${e.durationMs} ms, ended +${start + e.durationMs} ms: ${e.actions.map((a) => `${a.verb} ${a.object}`).join('; ')}`,
    );
  }

  // The same N replaces from a bare loop at concurrency 16: our Secrets as they are (labels, annotations,
  // owner reference), then the same Secrets stripped to type + data, as the benchmark's floor writes them.
  const ours = (await core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${secret}` })).items;
  const timeReplaces = async (label: string, strip: boolean) => {
    const fresh = (await core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${secret}` })).items;
    const started = Date.now();
    const each: number[] = [];
    const cpu = cpuOf();
    await runPool(fresh, 16, async (s) => {
      const t = performance.now();
      const body = strip
        ? {
            metadata: { name: s.metadata!.name!, resourceVersion: s.metadata!.resourceVersion! },
            type: s.type!,
            data: {
              '.dockerconfigjson': Buffer.from(
                JSON.stringify({ auths: { probe: { auth: label } } }),
              ).toString('base64'),
            },
          }
        : {
            // As the functions write it: no managedFields in the body (the server keeps its own).
            ...s,
            metadata: { ...s.metadata, managedFields: undefined },
            data: {
              '.dockerconfigjson': Buffer.from(
                JSON.stringify({ auths: { probe: { auth: label } } }),
              ).toString('base64'),
            },
          };
      await core.replaceNamespacedSecret({
        namespace: s.metadata!.namespace!,
        name: s.metadata!.name!,
        body,
        ...(strip ? {} : { fieldManager: 'tcr-assistant' }),
      });
      each.push(performance.now() - t);
    });
    console.log(
      `  bare loop, ${fresh.length} replaces of ${label}: ${Date.now() - started} ms; each ${spread(each)}; CPU: ${cpuSince(cpu)}`,
    );
  };
  // Stop the workers first: they would put our content back.
  await stack.worker?.close();
  await timeReplaces('our Secret shape (labels, annotations, owner reference, field manager)', false);
  await timeReplaces('a bare shape (first write strips labels and owner reference)', true);
  await timeReplaces('a bare shape again (type and data only, as the floor)', true);
  void ours;
} finally {
  await stack.stop();
}
