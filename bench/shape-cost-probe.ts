// `npx tsx bench/shape-cost-probe.ts [N] [rounds]`: what each part of our pull Secret's shape costs a rotation's
// rewrite (issue #15). watch-cost-probe.ts showed that our watches of our Secrets cost the API server next to
// nothing, while our rewrites cost more than the floor's even with no watch at all. Here each namespace holds
// one Secret per shape, each rewritten only in its own shape (so no write changes a shape), on a bare control
// plane, 16 at a time; shapes are interleaved round by round. Per shape: wall time and the CPU of
// kube-apiserver, etcd, kube-controller-manager (its garbage collector watches every object) and this process.

import { startControlPlane } from '../infra/local/control-plane.js';
import { connectionOf, KubeClient } from '../shared/kube/kube-client.js';
import { loadKubeTarget } from '../shared/kube/kube-target.js';
import { decodeObjectMeta, encodeSecret, PROTOBUF, type ProtoSecret } from '../shared/kube/protobuf.js';
import { benchDockerConfig, cpuByProcessUnder, runPool } from './observe.js';
import { median, medianCpu } from './rotation-rounds.js';

const n = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 3);
const plane = await startControlPlane({ name: 'sprobe', controllerManagerQps: 400 });
const kube = new KubeClient(connectionOf(loadKubeTarget({ kubeconfig: plane.kubeconfigPath })));
const signal = AbortSignal.timeout(3_600_000);

const cpuOf = () => cpuByProcessUnder(plane.dir);
const dockerConfig = benchDockerConfig;

interface Shape {
  labels?: boolean;
  /** Only the managed-by label (no CR-uid label: the owner reference carries the uid too). */
  managedByOnly?: boolean;
  /** The owner reference without `controller: false` and `blockOwnerDeletion: false` (both the default). */
  leanOwner?: boolean;
  annotation?: boolean;
  owner?: boolean;
  fieldManager?: boolean;
  /** resourceVersion precondition (as the functions send it). */
  rv?: boolean;
  /** JSON merge patch of `data` (with the resourceVersion) instead of a PUT of the whole object. */
  patch?: boolean;
  /** Sent as protobuf; `protoAnswer`: the answer asked for in protobuf too (else JSON). */
  proto?: boolean;
  protoAnswer?: boolean;
  /** An annotation of this many bytes: the floor's structure at a bigger size (size or structure?). */
  pad?: number;
}
// `ours` is our Secret as written before issue #15 (with the CR-name annotation); `no-annotation` is our Secret
// as written since (PROBE_SHAPES=ours,no-annotation,floor compares them).
const SHAPES: Record<string, Shape> = {
  ours: { labels: true, annotation: true, owner: true, fieldManager: true, rv: true },
  'ours-patch': { labels: true, annotation: true, owner: true, fieldManager: true, rv: true, patch: true },
  'no-owner': { labels: true, annotation: true, fieldManager: true, rv: true },
  'no-annotation': { labels: true, owner: true, fieldManager: true, rv: true },
  'no-labels': { annotation: true, owner: true, fieldManager: true, rv: true },
  'no-rv': { labels: true, annotation: true, owner: true, fieldManager: true },
  'no-fm': { labels: true, annotation: true, owner: true, rv: true },
  'bare-fm-rv': { fieldManager: true, rv: true },
  floor: {},
  // The floor padded towards our Secret's stored size (~1,170 bytes against the floor's ~630): if these cost
  // what ours does, the shape's cost is its size, not its labels or owner reference.
  'floor-pad300': { pad: 300 },
  'floor-pad480': { pad: 480 },
  // Which part of today's shape (two labels, owner reference) costs what: one label less, or one part only.
  'lean-owner': { labels: true, owner: true, leanOwner: true, fieldManager: true, rv: true },
  'one-label': { labels: true, managedByOnly: true, owner: true, fieldManager: true, rv: true },
  'owner-only': { owner: true, fieldManager: true, rv: true },
  'labels-only': { labels: true, fieldManager: true, rv: true },
  // The managed-by label alone: what our Secret would be with neither the CR-uid label nor the owner reference.
  'managed-by-only': { labels: true, managedByOnly: true, fieldManager: true, rv: true },
  // Our Secret and the floor's in protobuf (shared/kube/protobuf.ts): the request only, or both ways.
  'lean-pb-in': { labels: true, owner: true, leanOwner: true, fieldManager: true, rv: true, proto: true },
  'lean-pb': {
    labels: true,
    owner: true,
    leanOwner: true,
    fieldManager: true,
    rv: true,
    proto: true,
    protoAnswer: true,
  },
  'floor-pb': { proto: true, protoAnswer: true },
  // Our Secret without the owner reference (the finalizer and our own sweep clean up instead), in protobuf.
  'labels-pb': { labels: true, fieldManager: true, rv: true, proto: true, protoAnswer: true },
};
const only = process.env.PROBE_SHAPES?.split(',');
const shapes = Object.entries(SHAPES).filter(([k]) => !only || only.includes(k));

try {
  const names = Array.from({ length: n }, (_, i) => `sp-${i}`);
  const uid = new Map<string, string>();
  const rv = new Map<string, string>();
  const body = (ns: string, name: string, s: Shape, password: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: ns,
      ...(s.rv && rv.has(`${ns}/${name}`) ? { resourceVersion: rv.get(`${ns}/${name}`) } : {}),
      ...(s.labels
        ? {
            labels: {
              'app.kubernetes.io/managed-by': 'tcr-assistant',
              ...(s.managedByOnly
                ? {}
                : { 'tcr.tencentcloudcr.com/imagepullsecret-uid': '6f1f1f1f-0000-4000-8000-000000000001' }),
            },
          }
        : {}),
      ...(s.annotation || s.pad
        ? {
            annotations: {
              ...(s.annotation ? { 'tcr.tencentcloudcr.com/imagepullsecret': 'probe' } : {}),
              ...(s.pad ? { 'bench/pad': 'x'.repeat(s.pad) } : {}),
            },
          }
        : {}),
      ...(s.owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'v1',
                kind: 'Namespace',
                name: ns,
                uid: uid.get(ns),
                ...(s.leanOwner ? {} : { controller: false, blockOwnerDeletion: false }),
              },
            ],
          }
        : {}),
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': dockerConfig(password) },
  });
  await runPool(names, 16, async (ns) => {
    const o = (await kube.post('/api/v1/namespaces', { metadata: { name: ns } }, { signal })) as {
      metadata: { uid: string };
    };
    uid.set(ns, o.metadata.uid);
    for (const [name, s] of shapes) {
      const r = (await kube.post(`/api/v1/namespaces/${ns}/secrets`, body(ns, name, s, 'init'), {
        signal,
        query: s.fieldManager ? { fieldManager: 'tcr-assistant' } : {},
      })) as { metadata: { resourceVersion: string } };
      rv.set(`${ns}/${name}`, r.metadata.resourceVersion);
    }
  });
  console.log(`N=${n}: ${n} namespaces, one Secret per shape (${shapes.map(([k]) => k).join(', ')})`);
  const results: Record<string, { ms: number[]; cpu: Record<string, number>[] }> = {};
  for (let round = 1; round <= rounds; round++) {
    // The order turns each round: a shape that always went first would always meet the least history.
    const turned = shapes.map((_, i) => shapes[(i + round - 1) % shapes.length]!);
    for (const [name, s] of turned) {
      // PROBE_PASSWORD_BYTES: a token as long as a real one (a TCR token is ~1.8 KB) instead of a short password.
      const password = `r${round}-${name}-`.padEnd(Number(process.env.PROBE_PASSWORD_BYTES ?? 0), 'x');
      await new Promise((r) => setTimeout(r, 500));
      const cpu0 = cpuOf();
      const t0 = performance.now();
      await runPool(names, 16, async (ns) => {
        const path = `/api/v1/namespaces/${ns}/secrets/${name}`;
        const query = s.fieldManager ? { fieldManager: 'tcr-assistant' } : {};
        const r = (
          s.patch
            ? await kube.patch(
                path,
                {
                  metadata: { resourceVersion: rv.get(`${ns}/${name}`) },
                  data: { '.dockerconfigjson': dockerConfig(password) },
                },
                { signal, query },
              )
            : s.proto
              ? {
                  metadata: await kube
                    .requestBytes('PUT', path, {
                      body: encodeSecret(body(ns, name, s, password) as ProtoSecret),
                      contentType: PROTOBUF,
                      accept: s.protoAnswer ? PROTOBUF : 'application/json',
                      query,
                      signal,
                    })
                    .then((b) =>
                      s.protoAnswer
                        ? decodeObjectMeta(b)
                        : (JSON.parse(b.toString('utf8')) as { metadata: { resourceVersion: string } })
                            .metadata,
                    ),
                }
              : await kube.put(path, body(ns, name, s, password), { signal, query })
        ) as { metadata: { resourceVersion: string } };
        rv.set(`${ns}/${name}`, r.metadata.resourceVersion);
      });
      const ms = performance.now() - t0;
      const cpu1 = cpuOf();
      const cpu = Object.fromEntries(
        Object.entries(cpu1).map(([k, v]) => [k, +(v - (cpu0[k] ?? 0)).toFixed(2)]),
      );
      const r = results[name] ?? { ms: [], cpu: [] };
      results[name] = r;
      r.ms.push(Math.round(ms));
      r.cpu.push(cpu);
      console.log(`round ${round} ${name.padEnd(13)}: ${ms.toFixed(0)} ms, CPU ${JSON.stringify(cpu)}`);
    }
  }
  console.log('');
  for (const [name] of shapes) {
    const sample = await kube.get(`/api/v1/namespaces/${names[0]}/secrets/${name}`, { signal });
    console.log(`one stored Secret of shape ${name}: ${JSON.stringify(sample).length} bytes as JSON`);
  }
  console.log('medians over rounds:');
  for (const [name] of shapes) {
    const r = results[name];
    if (!r) continue;
    const keys = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'probe'];
    const cpu = medianCpu(r.cpu);
    const cpuText = keys.map((k) => `${k} ${(cpu[k] ?? 0).toFixed(2)}`).join(', ');
    console.log(`${name.padEnd(13)}: ${median(r.ms)} ms (all: ${r.ms.join(', ')}), CPU s: ${cpuText}`);
  }
} finally {
  await plane.stop();
}
