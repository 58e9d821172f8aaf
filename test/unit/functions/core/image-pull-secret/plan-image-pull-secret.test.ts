import { describe, expect, it } from 'vitest';
import {
  type ClusterState,
  type CrPlan,
  planImagePullSecret,
  STATUS_LIST_CAP,
  statusEquals,
} from '../../../../../functions/core/image-pull-secret/plan-image-pull-secret.js';
import type {
  Condition,
  CrView,
  FailedNamespace,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../../../../../functions/core/model.js';
import { FINALIZER, SKIP_ANNOTATION } from '../../../../../shared/contracts/labels.js';
import { secretNameFor } from '../../../../../shared/contracts/names.js';
import {
  crView,
  foreignSecretView,
  nsView,
  ourSecretView,
  saView,
} from '../../../../support/fake-cluster.js';

const A = secretNameFor('a');
const T0 = '2025-01-01T00:00:00Z';
const NOW = new Date('2025-01-02T03:04:05.678Z');
const NOW_S = '2025-01-02T03:04:05Z';
const LATER = new Date('2025-01-03T00:00:00.000Z');
const skip = { [SKIP_ANNOTATION]: 'true' };

/** it.each rows titled by their own `title` (printed in full, unlike `$title`). */
const titled = <T extends { title: string }>(rows: T[]): [string, T][] => rows.map((r) => [r.title, r]);

function cluster(s: Partial<ClusterState>): ClusterState {
  return { namespaces: [], secretsNamed: [], serviceAccounts: [], failures: [], ...s };
}

/** A namespace in a given shape for CR `a`: its namespace, Secrets named tcr.ipsa and ServiceAccounts. */
interface NsShape {
  namespace: NamespaceView;
  secrets: SecretView[];
  serviceAccounts: ServiceAccountView[];
}

const a = crView('a', { serviceAccounts: 'default' });
const shape = (name: string, kind: string): NsShape => {
  const converged = { secrets: [ourSecretView(a, name)], serviceAccounts: [saView(name, 'default', [A])] };
  switch (kind) {
    case 'converged':
      return { namespace: nsView(name), ...converged };
    case 'converged, a non-matching ServiceAccount without entry':
      return {
        namespace: nsView(name),
        ...converged,
        serviceAccounts: [...converged.serviceAccounts, saView(name, 'builder')],
      };
    case 'no Secret yet':
      return { namespace: nsView(name), secrets: [], serviceAccounts: [saView(name, 'default')] };
    case 'stale Secret (old password)':
      return {
        ...shape(name, 'converged'),
        secrets: [ourSecretView(crView('a', { password: 'old' }), name)],
      };
    case 'matching ServiceAccount lacks the entry':
      return { ...converged, namespace: nsView(name), serviceAccounts: [saView(name, 'default', ['x'])] };
    case 'foreign Secret of our name':
      return { namespace: nsView(name), secrets: [foreignSecretView(name, A)], serviceAccounts: [] };
    case 'terminating, with our Secret':
      return { ...converged, namespace: nsView(name, { terminating: true }) };
    case 'skipped, with our Secret':
      return { ...converged, namespace: nsView(name, { annotations: skip }) };
    case 'skipped, nothing of ours':
      return { namespace: nsView(name, { annotations: skip }), secrets: [], serviceAccounts: [] };
    case 'skipped, foreign Secret of our name':
      return {
        namespace: nsView(name, { annotations: skip }),
        secrets: [foreignSecretView(name, A)],
        serviceAccounts: [],
      };
    default:
      throw new Error(kind);
  }
};
const stateOf = (shapes: NsShape[], failures: FailedNamespace[] = []): ClusterState =>
  cluster({
    namespaces: shapes.map((s) => s.namespace),
    secretsNamed: shapes.flatMap((s) => s.secrets),
    serviceAccounts: shapes.flatMap((s) => s.serviceAccounts),
    failures,
  });

const ready = (status: ImagePullSecretStatus | undefined): Condition | undefined =>
  status?.conditions?.find((c) => c.type === 'Ready');

describe('planImagePullSecret: one namespace of each shape', () => {
  it.each<[string, Partial<CrPlan['counts']>, boolean | 'rewrite']>([
    ['converged', { desired: 1, success: 1 }, false],
    ['converged, a non-matching ServiceAccount without entry', { desired: 1, success: 1 }, false],
    ['no Secret yet', { desired: 1, pending: 1 }, true],
    ['stale Secret (old password)', { desired: 1, pending: 1 }, 'rewrite'],
    ['matching ServiceAccount lacks the entry', { desired: 1, pending: 1 }, true],
    ['foreign Secret of our name', { desired: 1, conflicts: 1 }, false],
    ['terminating, with our Secret', {}, false],
    ['skipped, with our Secret', {}, true],
    ['skipped, nothing of ours', {}, false],
    ['skipped, foreign Secret of our name', {}, false],
  ])('%s → counts %j, needs a namespace job: %s', (kind, counts, reconcile) => {
    const plan = planImagePullSecret(a, stateOf([shape('ns-1', kind)]), NOW);
    expect(plan.counts).toEqual({ desired: 0, success: 0, conflicts: 0, failed: 0, pending: 0, ...counts });
    // 'rewrite': only the Secret's content is stale, so the CR job rewrites it in place (no namespace job).
    expect(plan.namespacesToReconcile).toEqual(reconcile === true ? ['ns-1'] : []);
    expect(plan.secretUpdates.map((u) => u.namespace)).toEqual(reconcile === 'rewrite' ? ['ns-1'] : []);
    expect(plan.status?.secretsDesired).toBe(plan.counts.desired);
    expect(plan.status?.secretsSuccess).toBe(plan.counts.success);
  });

  it('a mixed cluster: counts add up and exactly the non-converged namespaces are listed, sorted', () => {
    const kinds = [
      'stale Secret (old password)',
      'converged',
      'no Secret yet',
      'foreign Secret of our name',
      'skipped, with our Secret',
      'terminating, with our Secret',
      'matching ServiceAccount lacks the entry',
      'converged',
      'skipped, nothing of ours',
    ];
    const shapes = kinds.map((k, i) => shape(`ns-${9 - i}`, k));
    const plan = planImagePullSecret(a, stateOf(shapes), NOW);
    expect(plan.counts).toEqual({ desired: 6, success: 2, conflicts: 1, failed: 0, pending: 3 });
    expect(plan.namespacesToReconcile).toEqual(['ns-3', 'ns-5', 'ns-7']);
    expect(plan.secretUpdates.map((u) => u.namespace)).toEqual(['ns-9']);
    expect(plan.status).toMatchObject({ secretsDesired: 6, secretsSuccess: 2, observedGeneration: 1 });
  });

  // After `serviceAccounts` is narrowed, the ServiceAccount that no longer matches still lists our entry:
  // the namespace is not converged, and the fan-out must send the job that removes it.
  it('narrowed serviceAccounts: a namespace where a no-longer-matching ServiceAccount keeps our entry needs a job', () => {
    const narrowed = crView('a', { serviceAccounts: 'builder' });
    const state = cluster({
      namespaces: [nsView('ns-1')],
      secretsNamed: [ourSecretView(narrowed, 'ns-1')],
      serviceAccounts: [saView('ns-1', 'default', [A]), saView('ns-1', 'builder', [A])],
    });
    expect(planImagePullSecret(narrowed, state, NOW).namespacesToReconcile).toEqual(['ns-1']);
  });
});

describe('planImagePullSecret: Ready condition and failedNamespaces', () => {
  const conflictMsg = `Secret ${A} exists and was not created by tcr-assistant; it is left untouched`;
  const failure = (ns: string): FailedNamespace => ({
    namespace: ns,
    reason: 'Failed',
    message: 'create secrets: HTTP 403: forbidden',
    since: T0,
  });
  it.each(
    titled<{
      title: string;
      cr?: CrView;
      kinds: string[];
      failures?: FailedNamespace[];
      expected: Pick<Condition, 'status' | 'reason'> & { message: string | RegExp };
      failed: FailedNamespace[];
    }>([
      {
        title: 'all converged → True Synced',
        kinds: ['converged', 'converged'],
        expected: { status: 'True', reason: 'Synced', message: 'all 2 namespaces converged' },
        failed: [],
      },
      {
        title: 'no namespace wanted → True Synced with 0',
        kinds: ['skipped, nothing of ours'],
        expected: { status: 'True', reason: 'Synced', message: 'all 0 namespaces converged' },
        failed: [],
      },
      {
        title: 'some pending → False Progressing',
        kinds: ['converged', 'no Secret yet'],
        expected: { status: 'False', reason: 'Progressing', message: '1 of 2 namespaces converged' },
        failed: [],
      },
      {
        title: 'a foreign Secret → False Conflict, listed in failedNamespaces',
        kinds: ['converged', 'foreign Secret of our name'],
        expected: {
          status: 'False',
          reason: 'Conflict',
          message: '1 namespace(s) have a Secret of the same name that is not ours: ns-1',
        },
        failed: [{ namespace: 'ns-1', reason: 'Conflict', message: conflictMsg }],
      },
      {
        title: 'seven conflicts → the message names five and counts the rest',
        kinds: Array(7).fill('foreign Secret of our name'),
        expected: {
          status: 'False',
          reason: 'Conflict',
          message:
            '7 namespace(s) have a Secret of the same name that is not ours: ns-0, ns-1, ns-2, ns-3, ns-4, and 2 more',
        },
        failed: [0, 1, 2, 3, 4, 5, 6].map((i) => ({
          namespace: `ns-${i}`,
          reason: 'Conflict',
          message: conflictMsg,
        })),
      },
      {
        title: 'a recorded failure → False Failed, listed in failedNamespaces',
        kinds: ['converged', 'no Secret yet'],
        failures: [failure('ns-1')],
        expected: {
          status: 'False',
          reason: 'Failed',
          message:
            '1 namespace(s) could not be converged: ns-1 (ns-1: create secrets: HTTP 403: forbidden); see status.failedNamespaces',
        },
        failed: [failure('ns-1')],
      },
      {
        title: 'conflict and failure in one namespace → listed once, as the conflict; conflicts come first',
        kinds: ['foreign Secret of our name', 'no Secret yet'],
        failures: [failure('ns-0'), failure('ns-1')],
        expected: { status: 'False', reason: 'Conflict', message: /: ns-0$/ },
        failed: [{ namespace: 'ns-0', reason: 'Conflict', message: conflictMsg }, failure('ns-1')],
      },
      {
        title: 'invalid spec → False InvalidSpec with the reason',
        cr: crView('a', { invalid: 'spec.docker.server: must not be empty' }),
        kinds: ['skipped, nothing of ours'],
        expected: {
          status: 'False',
          reason: 'InvalidSpec',
          message: 'spec.docker.server: must not be empty',
        },
        failed: [],
      },
    ]),
  )('%s', (_title, { cr = a, kinds, failures = [], expected, failed }) => {
    const shapes = kinds.map((k, i) => shape(`ns-${i}`, k));
    const plan = planImagePullSecret(cr, stateOf(shapes, failures), NOW);
    const condition = ready(plan.status);
    expect(condition).toMatchObject({
      type: 'Ready',
      status: expected.status,
      reason: expected.reason,
      observedGeneration: cr.generation,
      lastTransitionTime: NOW_S,
    });
    expect(condition?.message).toMatch(expected.message);
    expect(plan.status?.failedNamespaces).toEqual(failed);
    expect(plan.counts.conflicts + plan.counts.failed).toBe(failed.length);
  });

  it('a deleting CR keeps its last status (nothing written) and its namespaces with Secrets of ours get jobs', () => {
    const deleting = crView('a', { deleting: true, status: { secretsDesired: 2 } });
    const plan = planImagePullSecret(
      deleting,
      stateOf([shape('ns-1', 'converged'), shape('ns-2', 'no Secret yet')]),
      NOW,
    );
    expect(plan.status).toBeUndefined();
    expect(plan.events).toEqual([]);
    expect(plan.namespacesToReconcile).toEqual(['ns-1']);
    expect(plan.finalizer).toBe('keep');
  });
});

describe('planImagePullSecret: finalizer', () => {
  const OTHER = 'example.com/other';
  it.each<[string, { deleting?: boolean; finalizers: string[] }, string[], CrPlan['finalizer']]>([
    ['alive, no finalizer → add', { finalizers: [] }, ['converged'], 'add'],
    ['alive, only another controller’s finalizer → add', { finalizers: [OTHER] }, [], 'add'],
    ['alive, finalizer present → keep', { finalizers: [FINALIZER] }, ['converged'], 'keep'],
    [
      'deleting, Secrets of ours left → keep',
      { deleting: true, finalizers: [FINALIZER] },
      ['converged'],
      'keep',
    ],
    [
      'deleting, our Secret left only in a terminating namespace → keep',
      { deleting: true, finalizers: [OTHER, FINALIZER] },
      ['terminating, with our Secret'],
      'keep',
    ],
    [
      'deleting, nothing of ours left → remove',
      { deleting: true, finalizers: [OTHER, FINALIZER] },
      ['no Secret yet'],
      'remove',
    ],
    [
      'deleting, only a foreign Secret of our name left → remove',
      { deleting: true, finalizers: [FINALIZER] },
      ['foreign Secret of our name'],
      'remove',
    ],
    ['deleting, our finalizer already gone → keep', { deleting: true, finalizers: [OTHER] }, [], 'keep'],
  ])('%s', (_title, o, kinds, expected) => {
    const cr = crView('a', o);
    const plan = planImagePullSecret(cr, stateOf(kinds.map((k, i) => shape(`ns-${i}`, k))), NOW);
    expect(plan.finalizer).toBe(expected);
  });
});

describe('planImagePullSecret: status writes and transition times', () => {
  const state = stateOf([shape('ns-1', 'converged'), shape('ns-2', 'no Secret yet')]);

  it('feeding the planned status back: nothing to write, no events, even at a later time', () => {
    const first = planImagePullSecret(a, state, NOW);
    expect(first.status).toBeDefined();
    const written = crView('a', { serviceAccounts: 'default', status: structuredClone(first.status) });
    const second = planImagePullSecret(written, state, LATER);
    expect(second.status).toBeUndefined();
    expect(second.events).toEqual([]);
  });

  it.each<[string, Condition['status'], string, string[], Condition['status'], string]>([
    [
      'False → False (Progressing → Conflict): time carried over',
      'False',
      'Progressing',
      ['foreign Secret of our name'],
      'False',
      T0,
    ],
    [
      'True → True (counts changed): time carried over',
      'True',
      'Synced',
      ['converged', 'converged'],
      'True',
      T0,
    ],
    ['False → True: now', 'False', 'Progressing', ['converged'], 'True', NOW_S],
    ['True → False: now', 'True', 'Synced', ['no Secret yet'], 'False', NOW_S],
  ])('%s', (_title, prevStatus, prevReason, kinds, nextStatus, time) => {
    const prev: Condition = {
      type: 'Ready',
      status: prevStatus,
      reason: prevReason,
      message: 'm',
      lastTransitionTime: T0,
    };
    const cr = crView('a', { serviceAccounts: 'default', status: { conditions: [prev] } });
    const plan = planImagePullSecret(cr, stateOf(kinds.map((k, i) => shape(`ns-${i}`, k))), NOW);
    expect(ready(plan.status)).toMatchObject({ status: nextStatus, lastTransitionTime: time });
  });

  it('a new generation alone makes a status write (observedGeneration)', () => {
    const first = planImagePullSecret(a, state, NOW);
    const bumped = crView('a', {
      serviceAccounts: 'default',
      generation: 2,
      status: structuredClone(first.status),
    });
    const plan = planImagePullSecret(bumped, state, NOW);
    expect(plan.status?.observedGeneration).toBe(2);
    expect(ready(plan.status)?.observedGeneration).toBe(2);
  });

  it.each<[string, ImagePullSecretStatus, ImagePullSecretStatus, boolean]>([
    [
      'empty and all-defaults are equal',
      {},
      { secretsDesired: 0, secretsSuccess: 0, conditions: [], failedNamespaces: [] },
      true,
    ],
    ['a different count differs', { secretsDesired: 1 }, { secretsDesired: 2 }, false],
    [
      'a different transition time differs',
      {
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Synced', message: 'm', lastTransitionTime: T0 },
        ],
      },
      {
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Synced', message: 'm', lastTransitionTime: NOW_S },
        ],
      },
      false,
    ],
    [
      'failedNamespaces order matters',
      {
        failedNamespaces: [
          { namespace: 'x', reason: 'r', message: 'm' },
          { namespace: 'y', reason: 'r', message: 'm' },
        ],
      },
      {
        failedNamespaces: [
          { namespace: 'y', reason: 'r', message: 'm' },
          { namespace: 'x', reason: 'r', message: 'm' },
        ],
      },
      false,
    ],
  ])('statusEquals: %s', (_title, x, y, equal) => {
    expect(statusEquals(x, y)).toBe(equal);
    expect(statusEquals(y, x)).toBe(equal);
  });
});

describe('planImagePullSecret: events on Ready transitions', () => {
  it.each<
    [
      string,
      string | undefined,
      string[],
      { type: string; reason: string; message?: RegExp }[],
      number?,
      number?,
    ]
  >([
    [
      'first sync',
      undefined,
      ['converged'],
      [{ type: 'Normal', reason: 'Synced', message: /^first full sync: 1 namespace\(s\) converged$/ }],
    ],
    [
      'Progressing → Synced, this generation never synced before',
      'Progressing',
      ['converged'],
      [{ type: 'Normal', reason: 'Synced' }],
    ],
    [
      'Progressing → Synced, this generation synced before (new namespaces): none',
      'Progressing',
      ['converged'],
      [],
      1,
    ],
    [
      'Progressing → Synced, a new generation',
      'Progressing',
      ['converged'],
      [{ type: 'Normal', reason: 'Synced', message: /^generation 2 converged in all 1 namespace\(s\)$/ }],
      1,
      2,
    ],
    [
      'Synced → Conflict',
      'Synced',
      ['foreign Secret of our name'],
      [{ type: 'Warning', reason: 'Conflict', message: /not ours: ns-0/ }],
    ],
    [
      'Conflict → Synced: Recovered',
      'Conflict',
      ['converged'],
      [{ type: 'Normal', reason: 'Recovered', message: /^recovered: all 1/ }],
    ],
    ['Failed → Synced: Recovered', 'Failed', ['converged'], [{ type: 'Normal', reason: 'Recovered' }]],
    [
      'first plan already in conflict',
      undefined,
      ['foreign Secret of our name'],
      [{ type: 'Warning', reason: 'Conflict' }],
    ],
    ['Synced → Synced: none', 'Synced', ['converged', 'converged'], []],
    ['Synced → Progressing: none', 'Synced', ['no Secret yet'], []],
    ['Progressing → Progressing: none', 'Progressing', ['no Secret yet'], []],
    [
      'Conflict → Conflict (another namespace): none',
      'Conflict',
      ['foreign Secret of our name', 'foreign Secret of our name'],
      [],
    ],
    ['first plan progressing: none', undefined, ['no Secret yet'], []],
  ])('%s', (_title, prevReason, kinds, expected, lastSyncedGeneration, generation = 1) => {
    const conditions: Condition[] | undefined = prevReason
      ? [
          {
            type: 'Ready',
            status: prevReason === 'Synced' ? 'True' : 'False',
            reason: prevReason,
            message: 'm',
            lastTransitionTime: T0,
          },
        ]
      : undefined;
    const cr = crView('a', {
      serviceAccounts: 'default',
      generation,
      status: { ...(conditions ? { conditions } : {}), lastSyncedGeneration },
    });
    const plan = planImagePullSecret(cr, stateOf(kinds.map((k, i) => shape(`ns-${i}`, k))), NOW);
    expect(plan.events).toHaveLength(expected.length);
    expected.forEach((e, i) => {
      expect(plan.events[i]).toMatchObject({ type: e.type, reason: e.reason });
      if (e.message) expect(plan.events[i]?.message).toMatch(e.message);
    });
  });

  it('an invalid spec is a Warning event once, not again while it stays invalid', () => {
    const invalid = 'spec.namespaces: must not contain spaces';
    const first = planImagePullSecret(crView('a', { invalid }), cluster({}), NOW);
    expect(first.events).toEqual([{ type: 'Warning', reason: 'InvalidSpec', message: invalid }]);
    const again = planImagePullSecret(
      crView('a', { invalid, status: structuredClone(first.status) }),
      cluster({}),
      LATER,
    );
    expect(again.events).toEqual([]);
    expect(again.status).toBeUndefined();
  });
});

describe('planImagePullSecret: bounded status', () => {
  const at = (i: number) =>
    new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

  it(`status lists are capped at ${STATUS_LIST_CAP} and sorted by most recent write`, () => {
    const n = 120;
    const names = Array.from({ length: n }, (_, i) => `ns-${String(i).padStart(3, '0')}`);
    // Write times shuffled relative to names; one Secret and one ServiceAccount never written by us.
    const order = names.map((_, i) => (i * 37) % n);
    const state = cluster({
      namespaces: names.map((ns) => nsView(ns)),
      secretsNamed: names.map((ns, i) =>
        ourSecretView(a, ns, { ourLastWrite: i === 5 ? undefined : at(order[i] ?? 0) }),
      ),
      serviceAccounts: names.flatMap((ns, i) => [
        saView(ns, 'default', [A], { ourLastWrite: i === 7 ? undefined : at(order[i] ?? 0) }),
        saView(ns, 'other', ['not-ours'], { ourLastWrite: at(10_000) }),
      ]),
    });
    const status = planImagePullSecret(a, state, NOW).status;
    for (const list of [status?.secretUpdateSuccessful, status?.serviceAccountsModifySuccessful]) {
      expect(list).toHaveLength(STATUS_LIST_CAP);
      const times = (list ?? []).map((e) => e.updatedAt);
      expect(times).toEqual([...times].sort().reverse());
      expect(times[0]).toBe(at(n - 1));
      expect(new Set((list ?? []).map((e) => e.namespacedName)).size).toBe(STATUS_LIST_CAP);
    }
    expect(status?.secretUpdateSuccessful?.[0]?.namespacedName).toBe(`${names[order.indexOf(n - 1)]}/${A}`);
    expect(status?.serviceAccountsModifySuccessful?.every((e) => e.namespacedName.endsWith('/default'))).toBe(
      true,
    );
  });

  it(`failedNamespaces is capped at ${STATUS_LIST_CAP}`, () => {
    const shapes = Array.from({ length: 120 }, (_, i) => shape(`ns-${i}`, 'foreign Secret of our name'));
    const plan = planImagePullSecret(a, stateOf(shapes), NOW);
    expect(plan.counts.conflicts).toBe(120);
    expect(plan.status?.failedNamespaces).toHaveLength(STATUS_LIST_CAP);
  });

  it('10,000 namespaces (converged, pending, conflicting, failing): status stays well under 64 KiB', () => {
    const shapes: NsShape[] = [];
    const failures: FailedNamespace[] = [];
    for (let i = 0; i < 10_000; i++) {
      const name = `namespace-with-a-rather-long-name-${String(i).padStart(5, '0')}`;
      const kind = i % 10 === 0 ? 'foreign Secret of our name' : i % 7 === 0 ? 'no Secret yet' : 'converged';
      const s = shape(name, kind);
      for (const sec of s.secrets) sec.ourLastWrite = at(i);
      for (const sa of s.serviceAccounts) sa.ourLastWrite = at(i);
      shapes.push(s);
      if (i % 7 === 0)
        failures.push({
          namespace: name,
          reason: 'RetriesExhausted',
          message: 'x'.repeat(300),
          since: at(i),
        });
    }
    const plan = planImagePullSecret(a, stateOf(shapes, failures), NOW);
    expect(plan.counts.desired).toBe(10_000);
    expect(plan.counts.conflicts).toBe(1000);
    expect(plan.namespacesToReconcile.length).toBeGreaterThan(1000);
    const size = JSON.stringify(plan.status).length;
    expect(size).toBeLessThan(32 * 1024);
  });

  it('10,000 failing namespaces with maximal (1000-character) messages: status still under 64 KiB', () => {
    const shapes = Array.from({ length: 10_000 }, (_, i) => shape(`ns-${i}`, 'no Secret yet'));
    const failures = shapes.map((s) => ({
      namespace: s.namespace.name,
      reason: 'RetriesExhausted',
      message: 'y'.repeat(1000),
      since: T0,
    }));
    const plan = planImagePullSecret(a, stateOf(shapes, failures), NOW);
    expect(plan.counts.failed).toBe(10_000);
    expect(JSON.stringify(plan.status).length).toBeLessThan(64 * 1024);
  });
});

describe('planImagePullSecret: the CR’s own view is the truth (issue 14)', () => {
  const failure = (ns: string): FailedNamespace => ({
    namespace: ns,
    reason: 'RetriesExhausted',
    message: 'patch serviceaccounts: HTTP 409: conflict',
    since: T0,
  });

  it('drops a recorded failure of a namespace it counts as converged (or no longer wants), and says to forget it', () => {
    const shapes = [
      shape('ns-0', 'converged'),
      shape('ns-1', 'no Secret yet'),
      shape('ns-2', 'skipped, nothing of ours'),
    ];
    const plan = planImagePullSecret(
      a,
      stateOf(shapes, [failure('ns-0'), failure('ns-1'), failure('ns-2'), failure('gone')]),
      NOW,
    );
    expect(plan.status?.failedNamespaces?.map((f) => f.namespace)).toEqual(['ns-1']);
    expect(plan.staleFailures.sort()).toEqual(['gone', 'ns-0', 'ns-2']);
    expect(plan.counts.failed).toBe(1);
  });

  it('success = desired and a failure recorded by an outage → Synced, not Failed', () => {
    const plan = planImagePullSecret(a, stateOf([shape('ns-0', 'converged')], [failure('ns-0')]), NOW);
    expect(ready(plan.status)).toMatchObject({ status: 'True', reason: 'Synced' });
    expect(plan.status?.failedNamespaces).toEqual([]);
  });

  it('a refused key source → False CredentialRefused with the reason, one Warning Event', () => {
    const refused = {
      ...crView('a', { awaitingCredential: true }),
      credentialProblem:
        'spec.tcr.credentialsSecretRef names Secret kube-system/k: the Secret must be in namespace tcr-assistant-system',
    };
    const plan = planImagePullSecret(refused, stateOf([shape('ns-0', 'no Secret yet')]), NOW);
    expect(ready(plan.status)).toMatchObject({
      status: 'False',
      reason: 'CredentialRefused',
      message: refused.credentialProblem,
    });
    expect(plan.events).toEqual([
      { type: 'Warning', reason: 'CredentialRefused', message: refused.credentialProblem },
    ]);
    const again = planImagePullSecret(
      { ...refused, status: structuredClone(plan.status)! },
      stateOf([shape('ns-0', 'no Secret yet')]),
      LATER,
    );
    expect(again.events).toEqual([]);
    expect(again.status).toBeUndefined();
  });

  it('records the generation it synced, so that later Progressing → Synced (new namespaces) is no event', () => {
    const first = planImagePullSecret(a, stateOf([shape('ns-0', 'converged')]), NOW);
    expect(first.status?.lastSyncedGeneration).toBe(1);
    const progressing = planImagePullSecret(
      { ...a, status: structuredClone(first.status)! },
      stateOf([shape('ns-0', 'converged'), shape('ns-1', 'no Secret yet')]),
      NOW,
    );
    expect(progressing.status?.lastSyncedGeneration).toBe(1);
    const synced = planImagePullSecret(
      { ...a, status: structuredClone(progressing.status)! },
      stateOf([shape('ns-0', 'converged'), shape('ns-1', 'converged')]),
      LATER,
    );
    expect(ready(synced.status)?.reason).toBe('Synced');
    expect(synced.events).toEqual([]);
  });
});
