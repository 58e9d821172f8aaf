// The Markdown table of a results object (bench/run.ts), also on its own: `npx tsx bench/render-table.ts <json>`.
import { readFileSync } from 'node:fs';

// biome-ignore lint/suspicious/noExplicitAny: a results JSON of any earlier run
export function renderTable(r: Record<string, any>): string {
  const m = r.machine as { cores: number; memoryGiB: number; cpu?: string };
  const v = r.versions as Record<string, string>;
  const header = `Benchmark ${r.date} — ${m.cores} cores, ${m.memoryGiB} GiB, Node ${v.node}, Kubernetes ${v.kubernetes}, Redis ${v.redis}, ${r.workers} workers, client concurrency ${r.clientConcurrency}, controller-manager ${r.controllerManagerQps ?? 20} QPS${r.webhook ? `, admission webhook ${r.webhook}` : ''}${r.loadBefore ? `; load average before ${r.loadBefore.join(' ')}, after ${r.loadAfter?.join(' ') ?? '-'}` : ''}`;
  // A run of several runtimes (`--runtime worker,scf`): one section each, side by side in one run.
  const runs: Record<string, unknown>[] = r.runtimes ?? [r];
  const sections = runs.map((run) =>
    [...(r.runtimes ? ['', `Runtime: ${run.runtime}`, ''] : ['']), ...renderRun(run)].join('\n'),
  );
  return `${header}\n${sections.join('\n')}\n`;
}

// biome-ignore lint/suspicious/noExplicitAny: a results JSON of any earlier run
function renderRun(r: Record<string, any>): string[] {
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
  const l = r.latency as
    | {
        rate: number;
        durationSeconds: number;
        namespaces?: number;
        p50Ms: number;
        p99Ms: number;
        maxMs: number;
        loadAtEnd?: number;
        scf?: ScfPhase;
      }
    | undefined;
  if (l)
    lines.push(
      '',
      `Latency (${l.rate}/s for ${l.durationSeconds} s, default ServiceAccount seen → carrying the entry, its Secret present): p50 ${l.p50Ms} ms (≤ 300), p99 ${l.p99Ms} ms (≤ 1500), max ${l.maxMs} ms${l.loadAtEnd === undefined ? '' : ` (load average ${l.loadAtEnd} at its end)`}`,
    );
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
        calls: number;
        apiserver: { p50Ms: number; p99Ms: number; meanMs: number; shareAtMost5ms: number };
        webhookServer: { p99Ms: number };
        failOpen: number;
        bornWithEntry: number;
        withWebhook: Record<string, number>;
        withoutWebhook?: Record<string, number>;
      }
    | undefined;
  if (a) {
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
  }
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
