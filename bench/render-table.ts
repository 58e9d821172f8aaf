// The Markdown table of a results object (bench/run.ts), also on its own: `npx tsx bench/render-table.ts <json>`.
import { readFileSync } from 'node:fs';
import type { describeStreamAdmission } from './admission.js';
import { checkDoneWhen, renderDoneWhen } from './done-when.js';
import type { LatencyResult } from './latency.js';
import { describeNamespacePaths, type NamespacePathSummary } from './namespace-path.js';

// biome-ignore lint/suspicious/noExplicitAny: a results JSON of any earlier run
export function renderTable(r: Record<string, any>): string {
  const m = r.machine as { cores: number; memoryGiB: number; cpu?: string };
  const v = r.versions as Record<string, string>;
  const header = `Benchmark ${r.date} — ${m.cores} cores, ${m.memoryGiB} GiB, Node ${v.node}, Kubernetes ${v.kubernetes}, Redis ${v.redis}, ${r.workers} workers, client concurrency ${r.clientConcurrency}, controller-manager ${r.controllerManagerQpsRuns?.join(' and ') ?? r.controllerManagerQps ?? 20} QPS${r.webhook ? `, admission webhook ${r.webhook}` : ''}${r.warmUpNamespaces ? `, ${r.warmUpNamespaces} warm-up namespaces per side on each fresh stack before any burst (not measured)` : ''}${r.loadBefore ? `; load average before ${r.loadBefore.join(' ')}, after ${r.loadAfter?.join(' ') ?? '-'}` : ''}`;
  // A run of several runtimes (`--runtime worker,scf`): one section each, side by side in one run.
  const runs: Record<string, unknown>[] = r.runtimes ?? [r];
  const sections = runs
    .filter((run) => run.bursts)
    .map((run) =>
      [
        ...(r.runtimes
          ? [
              '',
              `Runtime: ${run.runtime}${run.controllerManagerQps ? `, controller-manager ${run.controllerManagerQps} QPS` : ''}`,
              '',
            ]
          : ['']),
        ...renderRun(run, r.webhook),
      ].join('\n'),
    );
  if (r.production) sections.push(['', ...renderProduction(r.production)].join('\n'));
  // `--done-when`: the issue's targets first, then the sections they come from.
  if (r.doneWhen) sections.unshift(['', ...renderDoneWhen(checkDoneWhen(r))].join('\n'));
  return `${header}\n${sections.join('\n')}\n`;
}

// biome-ignore lint/suspicious/noExplicitAny: a results JSON of any earlier run
function renderRun(r: Record<string, any>, webhook?: 'on' | 'off'): string[] {
  const lines = [
    '| N | burst ours / floor (s) | ratio (≤ 1.25) | resync writes (0) | resync reads / ns (≤ 1) | rotation ours / floor (s) | ratio (≤ 1.25) | relay RSS (≤ 150 MiB) | relay CPU (s) | worker process RSS | Redis (MiB) | CR status (≤ 64 KiB) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const b of r.bursts as {
    n: number;
    burst: { oursMs: number; floorMs: number; ratio: number };
    steadyState: { writes: number; readsPerNamespace: number };
    rotation: { oursMs: number; floorMs: number; ratio: number; secrets?: number };
    footprint: {
      workerProcessRssMiB?: number;
      scfInstancesRssMiB?: number;
      relayRssMiB: number;
      relayCpuSeconds: number;
      redisUsedMemoryMiB: number;
      crStatusBytes: number;
    };
  }[]) {
    lines.push(
      `| ${b.n} | ${(b.burst.oursMs / 1000).toFixed(1)} / ${(b.burst.floorMs / 1000).toFixed(1)} | ${b.burst.ratio} | ${b.steadyState.writes} | ${b.steadyState.readsPerNamespace} | ${(b.rotation.oursMs / 1000).toFixed(1)} / ${(b.rotation.floorMs / 1000).toFixed(1)}${b.rotation.secrets ? ` (${b.rotation.secrets} Secrets)` : ''} | ${b.rotation.ratio} | ${b.footprint.relayRssMiB} MiB | ${b.footprint.relayCpuSeconds} | ${b.footprint.workerProcessRssMiB ?? '-'} MiB${b.footprint.scfInstancesRssMiB === undefined ? '' : ` (SCF instances ${b.footprint.scfInstancesRssMiB} MiB)`} | ${b.footprint.redisUsedMemoryMiB} | ${(b.footprint.crStatusBytes / 1024).toFixed(1)} KiB |`,
    );
  }
  const cpuOf = (c: Record<string, number>) =>
    Object.entries(c)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const secondsOf = (ms: number[]) => ms.map((m) => (m / 1000).toFixed(1)).join(' / ');
  const shaped = (
    r.bursts as {
      n: number;
      rotation: {
        secrets?: number;
        oursMs: number;
        floorOurShapeMs?: number;
        ratioToOurShape?: number;
        shapeCost?: number;
        rounds?: { ours: number[]; floor: number[]; floorOurShape: number[] };
        cpuSeconds?: Record<'ours' | 'floor' | 'floorOurShape', Record<string, number>>;
      };
    }[]
  ).filter((b) => b.rotation.floorOurShapeMs !== undefined);
  if (shaped.length > 0)
    lines.push(
      '',
      `Rotation against the floor in our Secret's shape (the bare script rewriting Secrets with the metadata of one of ours: its labels, and its owner reference until 2026-11-30): ${shaped
        .map(
          (b) =>
            `${b.rotation.secrets ?? b.n} Secrets: ours ${(b.rotation.oursMs / 1000).toFixed(1)} s / ${((b.rotation.floorOurShapeMs as number) / 1000).toFixed(1)} s = ${b.rotation.ratioToOurShape}× (that floor is ${b.rotation.shapeCost}× the bare one)${b.rotation.rounds ? `; medians of ${b.rotation.rounds.ours.length} rounds, order turned each round, ours ${secondsOf(b.rotation.rounds.ours)}, bare floor ${secondsOf(b.rotation.rounds.floor)}, floor in our shape ${secondsOf(b.rotation.rounds.floorOurShape)} s` : ''}${b.rotation.cpuSeconds ? `; CPU seconds per rotation (medians): ours ${cpuOf(b.rotation.cpuSeconds.ours)}, bare floor ${cpuOf(b.rotation.cpuSeconds.floor)}, floor in our shape ${cpuOf(b.rotation.cpuSeconds.floorOurShape)}` : ''}`,
        )
        .join('; ')}`,
    );
  const l = r.latency as
    | (Partial<LatencyResult> & {
        rate: number;
        durationSeconds: number;
        namespaces?: number;
        p50Ms: number;
        p99Ms: number;
        maxMs: number;
        loadAtEnd?: number;
        scf?: ScfPhase;
      })
    | undefined;
  if (l) {
    lines.push('');
    if (l.createdToConverged) lines.push(...describeLatency('Latency', l as LatencyResult));
    else
      lines.push(
        `Latency (${l.rate}/s for ${l.durationSeconds} s, default ServiceAccount seen → carrying the entry, its Secret present): p50 ${l.p50Ms} ms (≤ 300), p99 ${l.p99Ms} ms (≤ 1500), max ${l.maxMs} ms${l.loadAtEnd === undefined ? '' : ` (load average ${l.loadAtEnd} at its end)`}`,
      );
  }
  const scfLines = [
    ...(r.bursts as { n: number; scf?: ScfPhase }[])
      .filter((b) => b.scf)
      .map((b) => `burst N=${b.n}: ${describeScf(b.scf!)}`),
    ...(l?.scf
      ? [`latency (${l.namespaces ?? l.rate * l.durationSeconds} namespaces): ${describeScf(l.scf)}`]
      : []),
  ];
  if (scfLines.length > 0)
    lines.push(
      '',
      'SCF invocations (relay wake-ups and timers, as the emulator ran them):',
      ...scfLines.map((x) => `- ${x}`),
    );
  for (const b of r.bursts as { n: number; ourApiRequestsPerNamespace?: Record<string, number> }[])
    if (b.ourApiRequestsPerNamespace)
      lines.push(
        '',
        `Our identities' API requests per converged namespace (burst N=${b.n}, writes included, queue drained; API Priority and Fairness counts per ServiceAccount): ${describeOurs(b.ourApiRequestsPerNamespace)} (≤ 3)`,
      );
  const last = (r.bursts as { n: number; apiRequestsPerNamespace?: Record<string, number> }[]).at(-1);
  if (last?.apiRequestsPerNamespace) {
    const perNs = Object.entries(last.apiRequestsPerNamespace)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`);
    lines.push(
      '',
      `API requests per namespace converged (burst N=${last.n}, all clients): ${perNs.join(', ')}`,
    );
  }
  const a = r.admission as
    | {
        n: number;
        webhook?: 'on' | 'off';
        ourWithoutWebhook?: Record<string, number>;
        calls: number;
        apiserver: { p50Ms: number; p99Ms: number; meanMs: number; shareAtMost5ms: number };
        webhookServer: { p99Ms: number };
        /** A no-op webhook on the same calls (--admission-floor). */
        floors?: Record<
          string,
          { calls: number; p50Ms: number; p99Ms: number; meanMs: number; shareAtMost5ms: number }
        >;
        failOpen: number;
        bornWithEntry: number;
        withWebhook?: Record<string, number>;
        withoutWebhook?: Record<string, number>;
      }
    | undefined;
  // A run with --webhook off has no admission calls: only its patches per namespace, without the webhook.
  if (a && (a.webhook ?? webhook) === 'off') {
    lines.push(
      '',
      `ServiceAccount patches per namespace: - with the webhook (not run), ${(a.withoutWebhook ?? a.withWebhook)?.['PATCH serviceaccounts'] ?? 0} without (all API requests per namespace, queue drained: - with, ${sumOf(a.withoutWebhook ?? a.withWebhook)} without)`,
    );
  } else if (a) {
    const patches = (x: Record<string, number> | undefined) => x?.['PATCH serviceaccounts'] ?? 0;
    const all = (x: Record<string, number> | undefined) =>
      x
        ? Object.values(x)
            .reduce((p, q) => p + q, 0)
            .toFixed(2)
        : '-';
    lines.push(
      '',
      `Admission webhook (burst N=${a.n}, ${a.calls} calls; API server's apiserver_admission_webhook_admission_duration_seconds): p99 ${a.apiserver.p99Ms} ms (≤ 10; ${(a.apiserver.shareAtMost5ms * 100).toFixed(1)} % of calls ≤ 5 ms), p50 ${a.apiserver.p50Ms} ms, mean ${a.apiserver.meanMs} ms; inside the webhook p99 ${a.webhookServer.p99Ms} ms; failed open ${a.failOpen}; ServiceAccounts born with the entry ${a.bornWithEntry}/${a.n}`,
      `ServiceAccount patches per namespace: ${patches(a.withWebhook)} with the webhook, ${a.withoutWebhook ? patches(a.withoutWebhook) : '-'} without (all API requests per namespace, queue drained: ${all(a.withWebhook)} with, ${all(a.withoutWebhook)} without)`,
    );
    for (const [runtime, f] of Object.entries(a.floors ?? {}))
      lines.push(
        `Admission floor, a no-op webhook in ${runtime === 'go' ? 'Go' : 'Node'} on the same calls (${f.calls}, as the API server measures it): p99 ${f.p99Ms} ms (${(f.shareAtMost5ms * 100).toFixed(1)} % of calls ≤ 5 ms), p50 ${f.p50Ms} ms, mean ${f.meanMs} ms`,
      );
    if (a.ourWithoutWebhook)
      lines.push(
        `Our identities' API requests per converged namespace without the webhook (burst N=${a.n}): ${describeOurs(a.ourWithoutWebhook)}`,
      );
  }
  return lines;
}

const sumOf = (x: Record<string, number> | undefined) =>
  x
    ? Object.values(x)
        .reduce((p, q) => p + q, 0)
        .toFixed(2)
    : '-';

function describeVerbs(v: Record<string, Record<string, number>> | undefined): string {
  if (!v) return '';
  return `: ${Object.entries(v)
    .filter(([, c]) => Object.keys(c).length > 0)
    .map(
      ([id, c]) =>
        `${id} ${Object.entries(c)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}`,
    )
    .join('; ')}`;
}

function describeOurs(o: Record<string, number>): string {
  return `${o.total} (relay ${o.relay}, functions ${o.functions}, webhook ${o.webhook})`;
}

function describeLatency(
  what: string,
  l: LatencyResult & {
    apiServerClock?: NamespacePathSummary | undefined;
    admission?: ReturnType<typeof describeStreamAdmission> | undefined;
  },
): string[] {
  const q = (x: { p50Ms: number; p99Ms: number; maxMs?: number }) =>
    `p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms${x.maxMs === undefined ? '' : `, max ${x.maxMs} ms`}`;
  const out = [
    `${what} (${l.rate}/s for ${l.durationSeconds} s, ${l.namespaces} namespaces; load average ${l.loadAtEnd} at its end): namespace create sent → converged (Secret present, default ServiceAccount carrying the entry) **${q(l.createdToConverged)}** (target p50 ≤ 15 ms, p99 ≤ 60 ms); ServiceAccount seen → converged ${q(l.serviceAccountSeenToConverged)}; the create call itself ${q(l.createCall)}; create sent → default ServiceAccount seen (controller-manager) ${q(l.serviceAccountAppears)}`,
  ];
  if (l.hops)
    out.push(
      `Hops of each namespace's first job (${l.jobsFound} of ${l.namespaces} found in the queue's history): ${Object.entries(
        l.hops,
      )
        .map(([k, v]) => `${k} p50 ${v.p50Ms} / p99 ${v.p99Ms} ms`)
        .join('; ')}`,
    );
  if (l.apiServerClock) out.push(describeNamespacePaths(l.apiServerClock));
  if (l.admission)
    out.push(
      `Our webhook on those \`default\` ServiceAccounts (${l.admission.calls} CREATE calls): the API server's mean ${l.admission.apiServerMeanMs} ms per call, inside the webhook mean ${l.admission.insideMeanMs} / p99 ${l.admission.insideP99Ms} ms; ${l.admission.namespaceWaits} waited for the webhook's view to see their namespace (${l.admission.namespaceWaitTimeouts} in vain)${l.admission.connections === undefined ? '' : `; ${l.admission.connections} TLS connections accepted`}`,
    );
  return out;
}

/** The low-load stream on the control plane alone (nothing of ours running yet): the floor of the target. */
function describeFloorLatency(
  l: LatencyResult & { apiServerClock?: NamespacePathSummary | undefined },
): string[] {
  const c = l.createdToConverged;
  return [
    `The same stream on the control plane alone, before anything of ours started (${l.rate}/s for ${l.durationSeconds} s, ${l.namespaces} namespaces; load average ${l.loadAtEnd} at its end): namespace create sent → its \`default\` ServiceAccount seen **p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms, max ${c.maxMs} ms**; the create call itself p50 ${l.createCall.p50Ms} ms, p99 ${l.createCall.p99Ms} ms`,
    ...(l.apiServerClock ? [describeNamespacePaths(l.apiServerClock)] : []),
  ];
}

/** CPU seconds by process during a stream (results since 2026-11-29 14:40; earlier ones have none). */
function describeStreamCpu(l: { cpuSecondsByProcess?: Record<string, number> }): string[] {
  if (!l.cpuSecondsByProcess) return [];
  return [
    `CPU during that stream (s, by process): ${Object.entries(l.cpuSecondsByProcess)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  ];
}

// biome-ignore lint/suspicious/noExplicitAny: a results JSON of any earlier run
function renderProduction(p: Record<string, any>): string[] {
  const f = p.footprint as Record<
    string,
    { idleMaxRssMiB: number; scalePeakRssMiB: number; peakRssMiB: number }
  >;
  const idle = p.idle as {
    seconds: number;
    loadAtStart: number[];
    loadAtEnd: number[];
    cpuSeconds: Record<string, number>;
    cpuSecondsByThread?: Record<string, Record<string, number>>;
    relayPlusWorkerCpuPer120s: number;
    ourRequestsPerSecond: number;
    ourRequestsPerSecondByIdentity: Record<string, number>;
    auditBreakdown: Record<string, Record<string, number>>;
  };
  const lines = [
    `Production bundles, each its own process (${(p.bundles as string[]).join(', ')}${p.standbyRelay ? '; a second relay standing by, as the chart runs 2' : ''}), ${p.namespaces} namespaces + ${p.namespaces} default ServiceAccounts, controller-manager ${p.controllerManagerQps} QPS, admission webhook ${p.webhook ? 'on' : 'off'}`,
    '',
    '| process | RSS idle at N (max over the idle window) | peak while scaling to N | peak overall | idle CPU (s) in the window |',
    '|---|---|---|---|---|',
    ...Object.entries(f)
      .filter(([k, v]) => typeof v === 'object' && k !== 'memoryAtEnd')
      .map(
        ([k, v]) =>
          `| ${k}${k === 'relay' ? ' (≤ 80 MiB)' : k === 'worker' ? ' (≤ 150 MiB)' : ''} | ${v.idleMaxRssMiB} MiB | ${v.scalePeakRssMiB} MiB | ${v.peakRssMiB} MiB | ${idle.cpuSeconds[k] ?? '-'} |`,
      ),
    ...(f.memoryAtEnd
      ? [
          '',
          `Memory at the end of the run (MiB; RSS, V8 heap used / committed, external): ${Object.entries(
            f.memoryAtEnd as unknown as Record<
              string,
              { rssMiB: number; heapUsedMiB: number; heapCommittedMiB: number; externalMiB: number }
            >,
          )
            .map(([k, m]) => `${k} ${m.rssMiB} (${m.heapUsedMiB} / ${m.heapCommittedMiB}, ${m.externalMiB})`)
            .join('; ')}`,
        ]
      : []),
    ...(p.scale?.cpuSecondsByProcess
      ? [
          '',
          `Scaling to N (${p.scale.namespaces} namespaces in ${p.scale.seconds} s, until the queue was idle), CPU by process (s): ${Object.entries(
            p.scale.cpuSecondsByProcess as Record<string, number>,
          )
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        ]
      : []),
    '',
    `Idle window ${idle.seconds} s after convergence (load average ${idle.loadAtStart.join(' ')} → ${idle.loadAtEnd.join(' ')}): relay + worker CPU **${idle.relayPlusWorkerCpuPer120s} s per 120 s** (≤ 0.5); our identities' API requests **${idle.ourRequestsPerSecond}/s** (≤ 0.2): ${Object.entries(
      idle.ourRequestsPerSecondByIdentity,
    )
      .map(([k, v]) => `${k} ${v}/s`)
      .join(', ')}`,
    ...(idle.cpuSecondsByThread
      ? [
          `Idle CPU by thread (s; \`node\` is the main thread, \`V8 DefaultWorke\` V8's helpers, mostly concurrent GC): ${Object.entries(
            idle.cpuSecondsByThread,
          )
            .map(
              ([k, v]) =>
                `${k} ${
                  Object.entries(v)
                    .sort((x, y) => y[1] - x[1])
                    .map(([t, c]) => `${t} ${c}`)
                    .join(', ') || '0'
                }`,
            )
            .join('; ')}`,
        ]
      : []),
    ...(p.resync
      ? [
          `One periodic resync (the chart's 600 s; one CR job over all ${p.namespaces} namespaces), measured after the window: relay + worker CPU ${p.resync.cpuSeconds.relay} + ${p.resync.cpuSeconds.worker} s, our requests ${Object.values(p.resync.ourRequests as Record<string, number>).reduce((x, y) => x + y, 0)}; its share of every 120 s: ${p.resync.relayPlusWorkerCpuPer120s} s CPU, ${p.resync.ourRequestsPerSecond} requests/s`,
        ]
      : []),
    `What they were (API server audit log, requests in the window): ${Object.entries(idle.auditBreakdown)
      .map(
        ([k, v]) =>
          `${k}: ${
            Object.entries(v)
              .sort((x, y) => y[1] - x[1])
              .map(([what, c]) => `${what} ${c}`)
              .join(', ') || 'none'
          }`,
      )
      .join('; ')}`,
    '',
    ...(p.lowLoadFloor ? [...describeFloorLatency(p.lowLoadFloor), ''] : []),
    ...describeLatency('Low load on a fresh cluster', p.lowLoad),
    ...describeStreamCpu(p.lowLoad),
    `Our identities' API requests per namespace during that stream (Lease renewals included): ${describeOurs(p.lowLoad.ourRequestsPerNamespace)}${describeVerbs(p.lowLoad.ourRequestsByVerbPerNamespace)}`,
    '',
    ...describeLatency(`Low load at ${p.namespaces} namespaces`, p.lowLoadAtScale),
    ...describeStreamCpu(p.lowLoadAtScale),
    `Our identities' API requests per namespace during that stream (Lease renewals included): ${describeOurs(p.lowLoadAtScale.ourRequestsPerNamespace)}${describeVerbs(p.lowLoadAtScale.ourRequestsByVerbPerNamespace)}`,
  ];
  return lines;
}

interface ScfPhase {
  executions: number;
  startedInWindow?: number;
  wokenByRelay: number;
  byTimers: number;
  coldStarts: number;
  invokeCalls: number;
  failed: number;
  executionsPer1000Namespaces: number;
}

function describeScf(p: ScfPhase): string {
  return `${p.executionsPer1000Namespaces} invocations per 1,000 namespaces (${p.executions} ran; ${p.startedInWindow ?? p.executions} started then: ${p.wokenByRelay} woken by the relay, ${p.byTimers} by timers; ${p.coldStarts} cold starts; ${p.invokeCalls} Invoke calls; ${p.failed} failed)`;
}

if (process.argv[1]?.endsWith('render-table.ts') && process.argv[2]) {
  process.stdout.write(renderTable(JSON.parse(readFileSync(process.argv[2], 'utf8'))));
}
