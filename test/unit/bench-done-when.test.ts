import { describe, expect, it } from 'vitest';
import { checkDoneWhen, renderDoneWhen } from '../../bench/done-when.js';

const burst = (n: number, ratio: number, rotation: number, requests: number, writes = 0) => ({
  n,
  burst: { ratio },
  steadyState: { writes },
  rotation: { ratio: rotation, secrets: n === 5000 ? 6000 : n },
  ourApiRequestsPerNamespace: { total: requests },
});
const production = (p50: number, relay: number, namespaces = 5000) => ({
  namespaces,
  controllerManagerQps: 20,
  footprint: { relay: { idleMaxRssMiB: relay }, worker: { idleMaxRssMiB: 130 } },
  idle: { seconds: 120, relayPlusWorkerCpuPer120s: 0.39, ourRequestsPerSecond: 0.14 },
  lowLoad: {
    createdToConverged: { p50Ms: p50, p99Ms: 58 },
    serviceAccountAppears: { p50Ms: 12.4, p99Ms: 58 },
  },
  lowLoadAtScale: {
    createdToConverged: { p50Ms: 14, p99Ms: 59 },
    apiServerClock: { namespaces: 120, serviceAccountCreatesWaited: 4 },
  },
});
/** A run that meets every target. */
const passing = () => ({
  runtimes: [
    {
      runtime: 'worker',
      controllerManagerQps: 400,
      bursts: [burst(1000, 1.05, 1.1, 1.02), burst(5000, 0.9, 1.12, 1.01)],
    },
    {
      runtime: 'worker',
      controllerManagerQps: 20,
      bursts: [burst(1000, 1.0, 1.0, 1), burst(5000, 0.99, 1, 1)],
    },
  ],
  production: production(14, 72),
});

describe("issue #15's Done when", () => {
  it('meets every target when every figure is within it', () => {
    const rows = checkDoneWhen(passing());
    expect(rows).toHaveLength(15);
    expect(rows.filter((r) => !r.met)).toEqual([]);
  });

  it('names each figure that misses its target, and only those', () => {
    const r = passing();
    r.runtimes[0]!.bursts[0]!.rotation.ratio = 1.39; // rotation at 1,000 Secrets
    r.runtimes[1]!.bursts[1]!.burst.ratio = 1.03; // default controller-manager, N = 5,000
    r.runtimes[1]!.bursts[0]!.steadyState.writes = 2; // a resync that wrote
    r.production = production(15.1, 80.1); // p50 just over, relay just over
    const missed = checkDoneWhen(r)
      .filter((x) => !x.met)
      .map((x) => x.target);
    expect(missed).toEqual([
      'rotation ≤ 1.15× the floor at 1,000 Secrets',
      'low load (2/s) on a fresh cluster: created → converged p50 ≤ 15 ms, p99 ≤ 60 ms (worker, production bundles)',
      'default controller-manager: burst ≤ 1.02× the floor, N = 5,000',
      'resync of a converged cluster: 0 writes',
      'relay ≤ 80 MiB RSS at 5,000 namespaces (own process, production bundle)',
    ]);
  });

  it("shows each rotation round's ratio behind the median", () => {
    const r = passing();
    Object.assign(r.runtimes[0]!.bursts[1]!.rotation, { ratio: 1.12, roundRatios: [1.31, 1.12, 1.08] });
    const row = checkDoneWhen(r).find((x) => x.target === 'rotation ≤ 1.15× the floor at 6,000 Secrets');
    expect(row).toMatchObject({ met: true });
    expect(row?.figure).toContain('1.12× (6000 Secrets; median of 3 rounds, each round 1.31 / 1.12 / 1.08)');
  });
  it('counts a scenario that did not run as not met, so a partial run never reads as done', () => {
    const rows = checkDoneWhen({ runtimes: [passing().runtimes[0]!] });
    expect(rows.filter((r) => r.figure === 'not measured in this run').map((r) => r.target)).toEqual([
      'low load (2/s) on a fresh cluster: created → converged p50 ≤ 15 ms, p99 ≤ 60 ms (worker, production bundles)',
      'low load (2/s) at 5,000 namespaces: created → converged p50 ≤ 15 ms, p99 ≤ 60 ms (worker, production bundles)',
      'default controller-manager: burst ≤ 1.02× the floor, N = 1,000',
      'default controller-manager: burst ≤ 1.02× the floor, N = 5,000',
      'idle: our API requests ≤ 0.2/s',
      'relay ≤ 80 MiB RSS at 5,000 namespaces (own process, production bundle)',
      'worker ≤ 150 MiB RSS at 5,000 namespaces (own process, production bundle)',
      'idle CPU, relay + worker ≤ 0.5 s per 120 s',
    ]);
    expect(renderDoneWhen(rows)[0]).toMatch(/^Issue #15 "Done when", this run: 7 of 15 targets met/);
  });

  it('does not count figures of a production scenario smaller than 5,000 namespaces', () => {
    const r = { ...passing(), production: production(14, 72, 200) };
    const missed = checkDoneWhen(r).filter((x) => !x.met);
    expect(missed.map((x) => x.figure)).toEqual([
      "p50 14 / p99 59 ms; 4 of its 120 creates waited 50 ms in the API server's NamespaceLifecycle admission (only 200 namespaces in this run)",
      '72 MiB (only 200 namespaces in this run)',
      '130 MiB (only 200 namespaces in this run)',
    ]);
  });

  it("shows the controller-manager's own ServiceAccount next to the low-load figure", () => {
    const row = checkDoneWhen(passing()).find((r) => r.target.startsWith('low load (2/s) on a fresh'));
    expect(row?.figure).toBe(
      "p50 14 / p99 58 ms (the controller-manager's own `default` ServiceAccount: p50 12.4 / p99 58)",
    );
  });

  it('shows the same stream on the control plane alone next to ours, and judges ours alone', () => {
    const r = passing();
    r.production.lowLoad.createdToConverged.p99Ms = 61;
    Object.assign(r.production, {
      lowLoadFloor: {
        createdToConverged: { p50Ms: 7.1, p99Ms: 59.5 },
        apiServerClock: { namespaces: 120, serviceAccountCreatesWaited: 6 },
      },
    });
    const rows = checkDoneWhen(r).filter((x) => x.target.startsWith('low load'));
    expect(rows.map((x) => x.met)).toEqual([false, true]);
    expect(rows[0]?.figure).toBe(
      "p50 14 / p99 61 ms (the controller-manager's own `default` ServiceAccount: p50 12.4 / p99 58); the control plane alone in this run (`default` ServiceAccount present): p50 7.1 / p99 59.5 ms, 6 of its 120 creates waited 50 ms in the API server's NamespaceLifecycle admission",
    );
  });

  it("says how many of the controller-manager's ServiceAccount creates waited in NamespaceLifecycle", () => {
    const row = checkDoneWhen(passing()).find((r) => r.target.startsWith('low load (2/s) at 5,000'));
    expect(row?.figure).toBe(
      "p50 14 / p99 59 ms; 4 of its 120 creates waited 50 ms in the API server's NamespaceLifecycle admission",
    );
    expect(row?.met).toBe(true);
  });
});
