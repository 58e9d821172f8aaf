import { describe, expect, it } from 'vitest';
import { auditTimeMs, describeNamespacePaths, summarizeNamespacePaths } from '../../bench/namespace-path.js';

const BASE = Date.parse('2026-11-29T19:41:14Z');
/** An audit timestamp `ms` (fractional) after BASE, with microseconds as the API server writes them. */
const at = (ms: number) => {
  const whole = Math.floor(ms / 1000);
  const micros = Math.round((ms - whole * 1000) * 1000);
  return `${new Date(BASE + whole * 1000).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
};
const create = (
  objectRef: { resource: string; namespace?: string; name: string },
  received: number,
  answered: number,
  userAgent = 'bench',
  stage = 'ResponseComplete',
) =>
  JSON.stringify({
    verb: 'create',
    stage,
    userAgent,
    objectRef,
    requestReceivedTimestamp: at(received),
    stageTimestamp: at(answered),
  });
const KCM = 'kube-controller-manager/v1.34.2 (linux/amd64) kubernetes/abc/system:serviceaccount';

describe('auditTimeMs', () => {
  it.each([
    ['2026-11-29T19:41:14Z', BASE],
    ['2026-11-29T19:41:14.5Z', BASE + 500],
    ['2026-11-29T19:41:14.123456Z', BASE + 123.456],
    ['2026-11-29T19:41:14.123456789Z', BASE + 123.456789],
  ])('%s keeps what is below the millisecond', (stamp, want) => {
    expect(auditTimeMs(stamp)).toBeCloseTo(want, 6);
  });

  it.each(['', 'yesterday', '2026-11-29 19:41:14Z'])('%j is not a time', (stamp) => {
    expect(auditTimeMs(stamp)).toBeNaN();
  });
});

describe('summarizeNamespacePaths', () => {
  const names = new Set(['low-0', 'low-1', 'low-2']);
  const lines = [
    // low-0: a quick ServiceAccount, our Secret 6 ms after the namespace.
    create({ resource: 'namespaces', name: 'low-0' }, 0, 2.5),
    create({ resource: 'serviceaccounts', namespace: 'low-0', name: 'default' }, 3.5, 7.5, KCM),
    create({ resource: 'secrets', namespace: 'low-0', name: 'tcr.ipsbench' }, 8.5, 11),
    // low-1: the ServiceAccount create waited in NamespaceLifecycle.
    create({ resource: 'namespaces', name: 'low-1' }, 500, 502),
    create({ resource: 'serviceaccounts', namespace: 'low-1', name: 'default' }, 503, 557, KCM),
    create({ resource: 'secrets', namespace: 'low-1', name: 'tcr.ipsbench' }, 508, 510),
    // low-2: no Secret of ours (yet); a ServiceAccount someone else made is not the controller-manager's.
    create({ resource: 'namespaces', name: 'low-2' }, 1000, 1003),
    create({ resource: 'serviceaccounts', namespace: 'low-2', name: 'builder' }, 1004, 1006, KCM),
    create({ resource: 'serviceaccounts', namespace: 'low-2', name: 'default' }, 1004, 1005, 'kubectl'),
    create({ resource: 'serviceaccounts', namespace: 'low-2', name: 'default' }, 1005, 1010, KCM),
    // Not the stream's, not a create, not complete, not JSON: all skipped.
    create({ resource: 'namespaces', name: 'other' }, 0, 1),
    create({ resource: 'serviceaccounts', namespace: 'other', name: 'default' }, 2, 200, KCM),
    JSON.stringify({
      verb: 'get',
      stage: 'ResponseComplete',
      objectRef: { resource: 'namespaces', name: 'low-0' },
    }),
    create(
      { resource: 'secrets', namespace: 'low-2', name: 'tcr.ipsbench' },
      1006,
      1007,
      'x',
      'ResponseStarted',
    ),
    '{"verb":"create","objectRef":',
    '',
  ];

  it('times each create on the API server clock and counts the ServiceAccount creates that waited 50 ms', () => {
    const s = summarizeNamespacePaths(lines, names, 'tcr.ipsbench');
    expect(s).toBeDefined();
    if (!s) return;
    expect(s.namespaces).toBe(3);
    expect(s.serviceAccountCreatesWaited).toBe(1);
    expect(s.namespaceCreate.maxMs).toBe(3);
    expect(s.controllerManagerReacts).toEqual({ p50Ms: 1, p99Ms: 2, maxMs: 2 });
    expect(s.serviceAccountCreate).toEqual({ p50Ms: 5, p99Ms: 54, maxMs: 54 });
    expect(s.serviceAccountDone).toEqual({ p50Ms: 10, p99Ms: 57, maxMs: 57 });
    // Only the two namespaces with a Secret of that name count for ours.
    expect(s.oursReact).toEqual({ p50Ms: 6, p99Ms: 6, maxMs: 6 });
    expect(s.secretCreate).toEqual({ p50Ms: 2, p99Ms: 2.5, maxMs: 2.5 });
    expect(s.secretDone).toEqual({ p50Ms: 10, p99Ms: 11, maxMs: 11 });
    const line = describeNamespacePaths(s);
    expect(line).toContain('1 of 3 took ≥ 50 ms');
    expect(line).toContain('our Secret');
  });

  it("splits the headline with the client's own times: sent → received, converged on the server, → seen", () => {
    // Client times: low-0 sent 1 ms before the API server received it, seen 1.5 ms after both were answered;
    // low-1 (its ServiceAccount waited) sent 0.5 ms before, seen 2 ms after; low-2 has no Secret: left out.
    const times: Record<string, { sentMs: number; convergedMs: number }> = {
      'low-0': { sentMs: BASE - 1, convergedMs: BASE + 12.5 },
      'low-1': { sentMs: BASE + 499.5, convergedMs: BASE + 559 },
      'low-2': { sentMs: BASE + 999, convergedMs: BASE + 1020 },
    };
    const s = summarizeNamespacePaths(lines, names, 'tcr.ipsbench', (ns) => times[ns]);
    expect(s?.clientToServer).toEqual({ p50Ms: 0.5, p99Ms: 1, maxMs: 1 });
    // low-0: the Secret came last (11); low-1: the ServiceAccount (57).
    expect(s?.convergedOnServer).toEqual({ p50Ms: 11, p99Ms: 57, maxMs: 57 });
    expect(s?.serverToObserver).toEqual({ p50Ms: 1.5, p99Ms: 2, maxMs: 2 });
    expect(describeNamespacePaths(s as NonNullable<typeof s>)).toContain('the headline split');
    // Without them, or with none known, nothing is split.
    expect(summarizeNamespacePaths(lines, names, 'tcr.ipsbench')?.clientToServer).toBeUndefined();
    expect(
      summarizeNamespacePaths(lines, names, 'tcr.ipsbench', () => undefined)?.clientToServer,
    ).toBeUndefined();
  });

  it('leaves out what it has no creates for', () => {
    const onlyServiceAccounts = summarizeNamespacePaths(lines, names, 'tcr.ipsnone');
    expect(onlyServiceAccounts?.oursReact).toBeUndefined();
    expect(
      describeNamespacePaths(onlyServiceAccounts as NonNullable<typeof onlyServiceAccounts>),
    ).not.toContain('our Secret');
    expect(summarizeNamespacePaths(lines, new Set(['missing']), 'tcr.ipsbench')).toBeUndefined();
    expect(summarizeNamespacePaths([], names, 'tcr.ipsbench')).toBeUndefined();
  });
});
