// `npx tsx bench/watch-cost-probe.ts [N] [rounds] [passwordBytes]`: what our own watches of our Secrets cost
// a rotation (issue #15, "rotation ≤ 1.15× the floor"). On a bare control plane (no relay, no functions), N
// namespaces each hold a Secret of our shape (labels, annotations, owner reference, our field manager) and a
// bare one (type + data, as the benchmark's floor writes it). Each round rewrites all N of ours at
// concurrency 16 with: (a) no watch, (b) one / (c) two full watches of them (label selector, as the worker
// view's), (d) one / (e) two metadata-only watches (`as=PartialObjectMetadata`), and rewrites the bare ones
// with no watch (the floor). Per mode: the wall time of the writes, the time until every watch has seen every
// rewrite, and the CPU of kube-apiserver, etcd and this process (writer + watch decoding). Modes are
// interleaved round by round so that a busy machine hits them alike.

import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { startControlPlane } from '../infra/local/control-plane.js';
import { connectionOf, KubeClient } from '../shared/kube/kube-client.js';
import { loadKubeTarget } from '../shared/kube/kube-target.js';
import { benchDockerConfig, cpuByProcessUnder, runPool } from './observe.js';

const n = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 3);
const passwordBytes = Number(process.argv[4] ?? 8);
const SELECTOR = 'app.kubernetes.io/managed-by=tcr-assistant,tcr.tencentcloudcr.com/imagepullsecret-uid';
type Format = 'full' | 'meta' | 'pb' | 'pbmeta';
const ACCEPT: Record<Format, string> = {
  full: 'application/json',
  meta: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
  pb: 'application/vnd.kubernetes.protobuf;stream=watch',
  pbmeta: 'application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
};

const plane = await startControlPlane({ name: 'wprobe', controllerManagerQps: 400 });
const target = loadKubeTarget({ kubeconfig: plane.kubeconfigPath });
const connection = connectionOf(target);
const kube = new KubeClient(connection);
const signal = AbortSignal.timeout(3_600_000);

const cpuOf = () => cpuByProcessUnder(plane.dir);
const dockerConfig = benchDockerConfig;
const pad = 'x'.repeat(Math.max(0, passwordBytes - 6));
const password = (round: number, mode: string) =>
  `${mode}-${round}-${pad}`.slice(0, Math.max(passwordBytes, 8));

/** A raw watch of our Secrets from `rv`; counts MODIFIED events and parses each line as the worker does. */
function openWatch(rv: string, format: Format, ac: AbortController) {
  let modified = 0;
  let bytes = 0;
  const waiters: Array<() => void> = [];
  const url = new URL(`${target.server}/api/v1/secrets`);
  url.searchParams.set('watch', 'true');
  url.searchParams.set('labelSelector', SELECTOR);
  url.searchParams.set('resourceVersion', rv);
  url.searchParams.set('allowWatchBookmarks', 'true');
  const opened = (async () => {
    const { agent, headers } = await connection.prepare();
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(url, {
        agent,
        signal: ac.signal,
        headers: { ...headers, Accept: ACCEPT[format] },
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
  })().then((res) => {
    if (res.statusCode !== 200) throw new Error(`watch: ${res.statusCode}`);
    let pending = '';
    let buf = Buffer.alloc(0);
    const seen = () => {
      modified++;
      for (const w of waiters.splice(0)) w();
    };
    if (format === 'pb' || format === 'pbmeta') {
      // Frames: 4-byte big-endian length, then a meta.v1.WatchEvent whose field 1 is the type string.
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const len = buf.readUInt32BE(0);
          const msg = buf.subarray(4, 4 + len);
          buf = buf.subarray(4 + len);
          if (msg.subarray(0, 24).includes('MODIFIED')) seen();
        }
      });
      res.on('error', () => {});
      return res;
    }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      bytes += chunk.length;
      pending += chunk;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const event = JSON.parse(line) as { type: string; object: { kind?: string } };
        if (event.type === 'MODIFIED') seen();
        nl = pending.indexOf('\n');
      }
    });
    res.on('error', () => {});
    return res;
  });
  return {
    opened,
    get bytes() {
      return bytes;
    },
    async until(count: number) {
      const deadline = Date.now() + 120_000;
      while (modified < count) {
        if (Date.now() > deadline) throw new Error(`watch saw ${modified} of ${count} rewrites in 120 s`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 1000);
        });
      }
    },
  };
}

try {
  // controllerManagerQps lifts the default ServiceAccounts' pace; neither matters here.
  const names = Array.from({ length: n }, (_, i) => `wp-${i}`);
  const rv = new Map<string, string>(); // key `${ns}/${name}` → resourceVersion of our last write
  const ours = 'tcr.ipsprobe';
  const bare = 'floor-pull';
  await runPool(names, 16, async (ns) => {
    const nsObj = (await kube.post('/api/v1/namespaces', { metadata: { name: ns } }, { signal })) as {
      metadata: { uid: string };
    };
    const a = (await kube.post(
      `/api/v1/namespaces/${ns}/secrets`,
      {
        metadata: {
          name: ours,
          labels: {
            'app.kubernetes.io/managed-by': 'tcr-assistant',
            'tcr.tencentcloudcr.com/imagepullsecret-uid': '6f1f1f1f-0000-4000-8000-000000000001',
          },
          annotations: { 'tcr.tencentcloudcr.com/imagepullsecret': 'probe' },
          // A real owner (the namespace): the garbage collector would delete a Secret whose owner is absent.
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Namespace',
              name: ns,
              uid: nsObj.metadata.uid,
              controller: false,
              blockOwnerDeletion: false,
            },
          ],
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': dockerConfig(password(0, 'init')) },
      },
      { signal, query: { fieldManager: 'tcr-assistant' } },
    )) as { metadata: { resourceVersion: string } };
    rv.set(`${ns}/${ours}`, a.metadata.resourceVersion);
    const b = (await kube.post(
      `/api/v1/namespaces/${ns}/secrets`,
      {
        metadata: { name: bare },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': dockerConfig(password(0, 'init')) },
      },
      { signal },
    )) as { metadata: { resourceVersion: string } };
    rv.set(`${ns}/${bare}`, b.metadata.resourceVersion);
  });
  console.log(`N=${n}: ${n} namespaces with our Secret and a bare one; password ${passwordBytes} bytes`);

  /** Our rewrite as the functions send it: whole object, resourceVersion-guarded, our field manager. */
  const rewriteOurs = (ns: string, round: number, mode: string, uid: string) =>
    kube.put(
      `/api/v1/namespaces/${ns}/secrets/${ours}`,
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: ours,
          namespace: ns,
          resourceVersion: rv.get(`${ns}/${ours}`),
          labels: {
            'app.kubernetes.io/managed-by': 'tcr-assistant',
            'tcr.tencentcloudcr.com/imagepullsecret-uid': '6f1f1f1f-0000-4000-8000-000000000001',
          },
          annotations: {
            'tcr.tencentcloudcr.com/imagepullsecret': 'probe',
            // The design's digest annotation (44 characters), present in every mode so shapes are equal.
            'tcr.tencentcloudcr.com/data-digest': `${mode}${round}`.padEnd(44, '='),
          },
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Namespace',
              name: ns,
              uid,
              controller: false,
              blockOwnerDeletion: false,
            },
          ],
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': dockerConfig(password(round, mode)) },
      },
      { signal, query: { fieldManager: 'tcr-assistant' } },
    ) as Promise<{ metadata: { resourceVersion: string } }>;
  const uids = new Map<string, string>();
  for (const ns of names) {
    const s = (await kube.get(`/api/v1/namespaces/${ns}`, { signal })) as { metadata: { uid: string } };
    uids.set(ns, s.metadata.uid);
  }

  const modes = (process.env.PROBE_MODES ?? 'none,full1,full2,meta1,meta2,pb1,pbmeta1,floor').split(',');
  const results: Record<
    string,
    { writeMs: number[]; seenMs: number[]; cpu: Record<string, number>[]; bytes: number[] }
  > = {};
  for (let round = 1; round <= rounds; round++) {
    for (const mode of modes) {
      const watches = /\d$/.test(mode) ? Number(mode.slice(-1)) : 0;
      const format = mode.slice(0, -1) as Format;
      const start = (await kube.get('/api/v1/secrets', {
        signal,
        query: { labelSelector: SELECTOR, limit: 1 },
      })) as { metadata: { resourceVersion: string } };
      const ac = new AbortController();
      const ws = Array.from({ length: watches }, () => openWatch(start.metadata.resourceVersion, format, ac));
      await Promise.all(ws.map((w) => w.opened));
      await new Promise((r) => setTimeout(r, 300));
      const cpu0 = cpuOf();
      const t0 = performance.now();
      await runPool(names, 16, async (ns) => {
        if (mode === 'floor') {
          const r = (await kube.put(
            `/api/v1/namespaces/${ns}/secrets/${bare}`,
            {
              metadata: { name: bare },
              type: 'kubernetes.io/dockerconfigjson',
              data: { '.dockerconfigjson': dockerConfig(password(round, mode)) },
            },
            { signal },
          )) as { metadata: { resourceVersion: string } };
          rv.set(`${ns}/${bare}`, r.metadata.resourceVersion);
        } else {
          const r = await rewriteOurs(ns, round, mode, uids.get(ns) ?? '');
          rv.set(`${ns}/${ours}`, r.metadata.resourceVersion);
        }
      });
      const writeMs = performance.now() - t0;
      await Promise.all(ws.map((w) => w.until(n)));
      const seenMs = performance.now() - t0;
      const cpu1 = cpuOf();
      ac.abort();
      const cpu = Object.fromEntries(
        Object.entries(cpu1).map(([k, v]) => [k, +(v - (cpu0[k] ?? 0)).toFixed(2)]),
      );
      const r = results[mode] ?? { writeMs: [], seenMs: [], cpu: [], bytes: [] };
      results[mode] = r;
      r.writeMs.push(Math.round(writeMs));
      r.seenMs.push(Math.round(seenMs));
      r.cpu.push(cpu);
      r.bytes.push(ws.reduce((a, w) => a + w.bytes, 0));
      console.log(
        `round ${round} ${mode.padEnd(5)}: writes ${writeMs.toFixed(0)} ms, all seen ${seenMs.toFixed(0)} ms, watch bytes ${r.bytes.at(-1)}, CPU ${JSON.stringify(cpu)}`,
      );
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? Number.NaN;
  console.log('\nmedians over rounds:');
  for (const mode of modes) {
    const r = results[mode];
    if (!r) continue;
    const keys = Object.keys(r.cpu[0] ?? {});
    const cpu = keys.map((k) => `${k} ${med(r.cpu.map((c) => c[k] ?? 0)).toFixed(2)}`).join(', ');
    console.log(
      `${mode.padEnd(5)}: writes ${med(r.writeMs)} ms, seen ${med(r.seenMs)} ms, bytes/watch ${Math.round(med(r.bytes) / Math.max(1, Number(mode.slice(-1)) || 1))}, CPU s: ${cpu}`,
    );
  }
} finally {
  await plane.stop();
}
