// `npx tsx bench/rotation-probe.ts [N]`: where the time of a rotation goes. Converges N namespaces under one
// CR, changes its password, and splits the time until every Secret carries it into: the relay and queue hop
// (patch → CR job start), the CR job's reads and plan, its in-place rewrites, and the observer's poll.

import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { listAudit } from '../functions/adapters/audit-reader.js';
import { createImagePullSecret } from '../infra/local/image-pull-secrets.js';
import { startLocalStack, waitForRelay } from '../infra/local/stack.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../shared/contracts/names.js';
import { shareConnections } from '../shared/kube/kubeconfig.js';
import { runPool, waitQueueIdle } from './observe.js';

const n = Number(process.argv[2] ?? 1000);
const stack = await startLocalStack({ clusterId: 'probe', statusDelayMs: 5000 });
try {
  const core = shareConnections(stack.admin).makeApiClient(CoreV1Api);
  const custom = stack.admin.makeApiClient(CustomObjectsApi);
  await waitForRelay(stack);
  const docker = (password: string) => ({ server: 'probe.tencentcloudcr.com', username: 'probe', password });
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

  const t0 = Date.now();
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
  while ((await count('v2')) < n) await new Promise((r) => setTimeout(r, 100));
  const done = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  const entries = (await listAudit(stack.functions.redis, stack.functions.auditKey, {}, 100_000)).filter(
    (e) => Date.parse(e.time) >= t0 - 50 && e.kind === 'imagepullsecret',
  );
  console.log(`N=${n}: patch → all ${n} Secrets carry the new password in ${done - t0} ms`);
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
    await runPool(fresh, 16, async (s) => {
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
            ...s,
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
    });
    console.log(`  bare loop, ${fresh.length} replaces of ${label}: ${Date.now() - started} ms`);
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
