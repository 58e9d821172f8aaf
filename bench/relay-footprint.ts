// `npx tsx bench/relay-footprint.ts [--namespaces 5000] [--kcm-qps 400] [--relay-options '<NODE_OPTIONS>' ...]
// [--bundle <relay.cjs>] [--no-webhook]`: the relay's memory while it watches N namespaces and N ServiceAccounts
// (each namespace's `default`), with node's defaults, the chart's settings (relay.nodeFlags and NODE_OPTIONS)
// and any other settings given (`VAR=value ... <node flags>`: environment variables, then flags on node's
// command line); then the admission webhook's (its view of the
// N namespaces), as the image runs both (its bundles). Each relay row also says where its RSS is: pages of the
// node binary, malloc's main heap, other anonymous memory (V8's heap among it), from /proc/<pid>/smaps.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { startControlPlane } from '../infra/local/control-plane.js';
import { findFreePort } from '../infra/local/free-port.js';
import { CRD_FILE, NAMESPACE_FILE, RELAY_RBAC_FILE, REPO_ROOT } from '../infra/local/paths.js';
import { startRedis } from '../infra/local/redis.js';
import { installWebhook, startWebhookProcess } from '../infra/local/webhook.js';
import { applyManifests, readManifests } from '../shared/kube/manifests.js';
import { runPool } from './observe.js';

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '5000' },
    'relay-options': { type: 'string', multiple: true, default: [] },
    'kcm-qps': { type: 'string' },
    bundle: { type: 'string' },
    'no-webhook': { type: 'boolean', default: false },
  },
});
const chartValues = parseYaml(
  readFileSync(path.join(REPO_ROOT, 'infra', 'helm', 'tcr-assistant', 'values.yaml'), 'utf8'),
) as { relay: { nodeOptions: string; nodeFlags?: string[] }; webhook: { nodeOptions: string } };
/** The relay as the chart starts it: its nodeFlags and NODE_OPTIONS (here all given on node's command line). */
const chartRelay = [...(chartValues.relay.nodeFlags ?? []), chartValues.relay.nodeOptions].join(' ');
const n = Number(values.namespaces);
const cp = await startControlPlane({
  name: 'footprint',
  controllerManagerQps: values['kcm-qps'] ? Number(values['kcm-qps']) : undefined,
});
const redis = await startRedis();
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
for (const f of [CRD_FILE, NAMESPACE_FILE, RELAY_RBAC_FILE]) await applyManifests(kc, await readManifests(f));
const core = kc.makeApiClient(CoreV1Api);
const t0 = Date.now();
await runPool(
  Array.from({ length: n }, (_, i) => `fp-${i}`),
  32,
  async (name) => {
    await core.createNamespace({ body: { metadata: { name, labels: { team: `t${name.length}` } } } });
  },
);
for (;;) {
  const sas =
    (await core.listServiceAccountForAllNamespaces({ limit: 1, labelSelector: undefined })).metadata
      ?.remainingItemCount ?? 0;
  if (sas + 1 >= n) break;
  await new Promise((r) => setTimeout(r, 1000));
}
console.log(`created ${n} namespaces (+ ${n} default ServiceAccounts) in ${Date.now() - t0} ms`);
const relayKc = await cp.kubeconfigAs('system:serviceaccount:tcr-assistant-system:tcr-assistant-relay');
execFileSync(process.execPath, [
  path.join(REPO_ROOT, 'infra', 'scripts', 'build-bundles.mjs'),
  path.join(REPO_ROOT, 'dist', 'image'),
]);
const bundle = values.bundle
  ? path.resolve(values.bundle)
  : path.join(REPO_ROOT, 'dist', 'image', 'relay.cjs');
/** RSS by kind of mapping (MiB): the node binary's pages, malloc's main arena, every other mapping. */
const rssByMapping = (pid: number) => {
  const sums = { binary: 0, malloc: 0, other: 0 };
  let kind: keyof typeof sums = 'other';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) kind = head[1] === '[heap]' ? 'malloc' : head[1]?.endsWith('/node') ? 'binary' : 'other';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) sums[kind] += Number(rss[1]) / 1024;
  }
  return `node binary ${sums.binary.toFixed(1)}, malloc heap ${sums.malloc.toFixed(1)}, other ${sums.other.toFixed(1)}`;
};
const rows: string[] = [];
for (const [label, nodeOptions] of [
  ['node defaults', ''],
  [`the chart's settings (${chartRelay})`, chartRelay],
  ...(values['relay-options'] ?? []).map((o) => [o, o] as const),
] as const) {
  const port = await findFreePort();
  // `A=1 B=2 --flag ...`: leading VAR=value words are environment variables, the rest NODE_OPTIONS.
  const words = nodeOptions.split(' ').filter(Boolean);
  const extraEnv = Object.fromEntries(
    words
      .filter((w) => /^[A-Z_]+=/.test(w))
      .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  // The rest on node's command line, which takes V8 flags NODE_OPTIONS refuses (the chart's nodeFlags).
  const flags = words.filter((w) => !/^[A-Z_]+=/.test(w));
  const relay = spawn(process.execPath, [...flags, bundle], {
    env: {
      ...process.env,
      ...extraEnv,
      KUBECONFIG: relayKc,
      REDIS_URL: redis.url,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: '',
      POD_NAME: label,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = false;
  relay.once('exit', (code, signal) => {
    exited = true;
    if (code !== 0 && signal !== 'SIGTERM') console.error(`relay (${label}) exited: ${code ?? signal}`);
  });
  for (;;) {
    if (exited) break;
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then(async (r) => (r.status === 200 ? await r.text() : ''))
      .catch(() => '');
    if (ok === 'leading') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (exited) {
    rows.push(`| ${label} | ${n} | did not start | | | |`);
    continue;
  }
  await new Promise((r) => setTimeout(r, 5000));
  const rss = () =>
    Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relay.pid}/status`, 'utf8'))?.[1]) / 1024;
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    samples.push(rss());
    await new Promise((r) => setTimeout(r, 500));
  }
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const heap = Number(/tcr_relay_nodejs_heap_size_used_bytes (\d+)/.exec(metrics)?.[1]) / 2 ** 20;
  const heapTotal = Number(/tcr_relay_nodejs_heap_size_total_bytes (\d+)/.exec(metrics)?.[1]) / 2 ** 20;
  // CPU the relay spent from its start to here: listing N + N objects, the initial resync, the Lease.
  const stat = readFileSync(`/proc/${relay.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100;
  rows.push(
    `| ${label} | ${n} | ${Math.max(...samples).toFixed(1)} MiB | ${heap.toFixed(1)} / ${heapTotal.toFixed(1)} MiB | ${rssByMapping(relay.pid as number)} | ${cpuSeconds.toFixed(2)} s |`,
  );
  console.log(rows.at(-1));
  relay.kill('SIGTERM');
  await new Promise((r) => relay.once('exit', r));
}
const webhookRows: string[] = [];
const endpoint = values['no-webhook'] ? undefined : await installWebhook(kc);
for (const [label, nodeOptions] of endpoint
  ? ([
      ['node defaults', ''],
      [`the chart's settings (${chartValues.webhook.nodeOptions})`, chartValues.webhook.nodeOptions],
    ] as const)
  : []) {
  if (!endpoint) break;
  const webhook = await startWebhookProcess({
    kubeconfig: await cp.kubeconfigAs('system:serviceaccount:tcr-assistant-system:tcr-assistant-webhook'),
    endpoint,
    logFile: path.join(cp.dir, 'webhook-footprint.log'),
    env: { NODE_OPTIONS: nodeOptions, LOG_LEVEL: 'warn' },
    bundle: path.join(REPO_ROOT, 'dist', 'image', 'webhook.cjs'),
  });
  await webhook.waitReady(120_000);
  await new Promise((r) => setTimeout(r, 5000));
  const pid = webhook.process.child.pid as number;
  const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]);
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child}/status`, 'utf8'))?.[1]) / 1024;
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    samples.push(rss());
    await new Promise((r) => setTimeout(r, 500));
  }
  const heap = (await webhook.metric('tcr_webhook_nodejs_heap_size_used_bytes')) / 2 ** 20;
  const viewed = await webhook.metric('tcr_webhook_view_objects', { kind: 'namespace' });
  webhookRows.push(
    `| ${label} | ${viewed} | ${Math.max(...samples).toFixed(1)} MiB | ${heap.toFixed(1)} MiB |`,
  );
  await webhook.stop();
}
console.log(
  [
    '| relay run | namespaces + ServiceAccounts each | RSS (max of 10 samples) | heap used / total | RSS by mapping (MiB) | CPU since start |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    '| webhook run | namespaces in its view | RSS (max of 10 samples) | heap used |',
    '|---|---|---|---|',
    ...webhookRows,
  ].join('\n'),
);
await cp.stop();
await redis.stop();
process.exit(0);
