import { describe, expect, it } from 'vitest';
import type { CrView, SecretView } from '../../../../../functions/core/model.js';
import {
  danglingCandidates,
  isNoop,
  type NamespacePlan,
  type NamespaceState,
  planNamespace,
} from '../../../../../functions/core/namespace/plan-namespace.js';
import { desiredSecretFor } from '../../../../../functions/core/pull-secret/desired-secret.js';
import type { LabelSelector } from '../../../../../shared/contracts/label-selector.js';
import { CR_UID_LABEL, SKIP_ANNOTATION } from '../../../../../shared/contracts/labels.js';
import { secretNameFor } from '../../../../../shared/contracts/names.js';
import { crView, nsView, ourSecretView, saView } from '../../../../support/fake-cluster.js';

const NS = 'team-a';
const A = secretNameFor('a');
const B = secretNameFor('b');
const C = secretNameFor('c');
const D = secretNameFor('d');
const BAD = secretNameFor('bad');
const rvOf = (name: string) => `rv-${NS}-${name}`;
const skip = { [SKIP_ANNOTATION]: 'true' };

/** it.each rows titled by their own `title` (printed in full, unlike `$title`). */
const titled = <T extends { title: string }>(rows: T[]): [string, T][] => rows.map((r) => [r.title, r]);

const a = crView('a');
const b = crView('b');
const secA = ourSecretView(a, NS);
const secB = ourSecretView(b, NS);

function state(s: Partial<NamespaceState>): NamespaceState {
  return {
    namespace: nsView(NS),
    crs: [],
    ourSecrets: [],
    serviceAccounts: [saView(NS, 'default'), saView(NS, 'builder')],
    ...s,
  };
}

interface Summary {
  wantedBy: string[];
  writes: string[];
  patches: string[];
  deletes: string[];
  unchanged: string[];
  affectedCrs: string[];
}

/** The plan in a compact, comparable form: `create x`, `update x@rv`, `sa +x -y`, `delete x@rv`. */
function summary(plan: NamespacePlan): Summary {
  return {
    wantedBy: plan.wantedBy,
    writes: plan.writes.map((w) =>
      w.op === 'create' ? `create ${w.secret.name}` : `update ${w.secret.name}@${w.resourceVersion}`,
    ),
    patches: plan.serviceAccountPatches.map((p) =>
      [p.name, ...p.add.map((x) => `+${x.secret}`), ...p.remove.map((r) => `-${r}`)].join(' '),
    ),
    deletes: plan.deletes.map((d) => `delete ${d.name}@${d.resourceVersion}`),
    unchanged: plan.unchanged,
    affectedCrs: plan.affectedCrs,
  };
}

const none: Summary = { wantedBy: [], writes: [], patches: [], deletes: [], unchanged: [], affectedCrs: [] };

interface Case {
  title: string;
  state: NamespaceState;
  expected: Partial<Summary>;
}

const cases: Case[] = [
  {
    title: 'new namespace: one create per wanting CR, every ServiceAccount gets both entries',
    state: state({ crs: [a, b] }),
    expected: {
      wantedBy: ['a', 'b'],
      writes: [`create ${A}`, `create ${B}`],
      patches: [`default +${A} +${B}`, `builder +${A} +${B}`],
      affectedCrs: ['a', 'b'],
    },
  },
  {
    title: 'converged: zero writes, both Secrets unchanged',
    state: state({
      crs: [a, b],
      ourSecrets: [secA, secB],
      serviceAccounts: [saView(NS, 'default', [A, B]), saView(NS, 'builder', ['my-registry', B, A])],
    }),
    expected: { wantedBy: ['a', 'b'], unchanged: [A, B] },
  },
  {
    title: 'upgrade: converged Secrets written by an earlier version (CR-name annotation) cost zero writes',
    state: state({
      crs: [a, b],
      ourSecrets: [ourSecretView(a, NS, { oldShape: true }), ourSecretView(b, NS, { oldShape: true })],
      serviceAccounts: [saView(NS, 'default', [A, B]), saView(NS, 'builder', [A, B])],
    }),
    expected: { wantedBy: ['a', 'b'], unchanged: [A, B] },
  },
  {
    title: 'upgrade: a stale Secret of an earlier version (CR-name annotation) is updated',
    state: state({
      crs: [crView('a', { password: 'rotated-token' })],
      ourSecrets: [ourSecretView(a, NS, { oldShape: true })],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [A])],
    }),
    expected: { wantedBy: ['a'], writes: [`update ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'changed password: one update guarded by the stored resourceVersion, no ServiceAccount patch',
    state: state({
      crs: [crView('a', { password: 'rotated-token' })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [A])],
    }),
    expected: { wantedBy: ['a'], writes: [`update ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'Secret of ours that was tampered with (extra data key): updated back',
    state: state({
      crs: [a],
      ourSecrets: [{ ...secA, data: { ...secA.data, extra: 'eA==' } }],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: { wantedBy: ['a'], writes: [`update ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'Secret of ours labelled for an earlier CR of that name (another uid): updated to this one',
    state: state({
      crs: [a],
      ourSecrets: [{ ...secA, labels: { ...secA.labels, [CR_UID_LABEL]: 'uid-of-an-earlier-a' } }],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: { wantedBy: ['a'], writes: [`update ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'Secret deleted by hand while the entry stayed: created again, the entry is not duplicated',
    state: state({ crs: [a], serviceAccounts: [saView(NS, 'default', [A])] }),
    expected: { wantedBy: ['a'], writes: [`create ${A}`], affectedCrs: ['a'] },
  },
  {
    title: 'CR deleting: entries removed from every ServiceAccount, then the Secret deleted',
    state: state({
      crs: [crView('a', { deleting: true })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', ['my-registry', A]), saView(NS, 'builder', [A])],
    }),
    expected: {
      patches: [`default -${A}`, `builder -${A}`],
      deletes: [`delete ${A}@${rvOf(A)}`],
      affectedCrs: ['a'],
    },
  },
  {
    title: 'narrowing namespaces away from this one: entries removed, Secret deleted',
    state: state({
      crs: [crView('a', { namespaces: 'team-b,team-c' })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [])],
    }),
    expected: { patches: [`default -${A}`], deletes: [`delete ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'namespaces rule still naming this one among others: converged',
    state: state({
      crs: [crView('a', { namespaces: `team-b,${NS}` })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: { wantedBy: ['a'], unchanged: [A] },
  },
  {
    title:
      'narrowing serviceAccounts: entry removed only from the ServiceAccount no longer matching, Secret kept',
    state: state({
      crs: [crView('a', { serviceAccounts: 'builder' })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [A])],
    }),
    expected: { wantedBy: ['a'], patches: [`default -${A}`], unchanged: [A], affectedCrs: ['a'] },
  },
  {
    title: 'selector stops matching the namespace: entries removed, Secret deleted',
    state: state({
      crs: [crView('a', { namespaceSelector: { matchLabels: { env: 'prod' } } })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: { patches: [`default -${A}`], deletes: [`delete ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'skip annotation on the namespace: every entry and Secret of ours removed, foreign entries kept',
    state: state({
      namespace: nsView(NS, { annotations: skip }),
      crs: [a, b],
      ourSecrets: [secA, secB],
      serviceAccounts: [saView(NS, 'default', [A, 'my-registry', B]), saView(NS, 'builder', [B])],
    }),
    expected: {
      patches: [`default -${A} -${B}`, `builder -${B}`],
      deletes: [`delete ${A}@${rvOf(A)}`, `delete ${B}@${rvOf(B)}`],
      affectedCrs: ['a', 'b'],
    },
  },
  {
    title: 'skip annotation on a new namespace: nothing is created',
    state: state({ namespace: nsView(NS, { annotations: skip }), crs: [a, b] }),
    expected: {},
  },
  {
    title: 'skip annotation with a value other than "true": not skipped',
    state: state({
      namespace: nsView(NS, { annotations: { [SKIP_ANNOTATION]: 'false' } }),
      crs: [a],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: { wantedBy: ['a'], unchanged: [A] },
  },
  {
    title:
      'skip annotation on a ServiceAccount: its entry removed, the Secret and other ServiceAccounts kept',
    state: state({
      crs: [a],
      ourSecrets: [secA],
      serviceAccounts: [
        saView(NS, 'default', ['my-registry', A], { annotations: skip }),
        saView(NS, 'builder', [A]),
      ],
    }),
    expected: { wantedBy: ['a'], patches: [`default -${A}`], unchanged: [A], affectedCrs: ['a'] },
  },
  {
    title: 'skip annotation on a ServiceAccount in a new namespace: it gets no entry',
    state: state({
      crs: [a],
      serviceAccounts: [saView(NS, 'default', [], { annotations: skip }), saView(NS, 'builder')],
    }),
    expected: { wantedBy: ['a'], writes: [`create ${A}`], patches: [`builder +${A}`], affectedCrs: ['a'] },
  },
  {
    title: 'two CRs in one namespace: converged one untouched, new one created for its ServiceAccounts only',
    state: state({
      crs: [a, crView('b', { serviceAccounts: 'builder' })],
      ourSecrets: [secA],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [A])],
    }),
    expected: {
      wantedBy: ['a', 'b'],
      writes: [`create ${B}`],
      patches: [`builder +${B}`],
      unchanged: [A],
      affectedCrs: ['b'],
    },
  },
  {
    title: 'foreign entries (and tcr.ips-prefixed names without a Secret of ours) are never removed',
    state: state({
      crs: [crView('a', { deleting: true })],
      ourSecrets: [secA],
      serviceAccounts: [
        saView(NS, 'default', ['my-registry', A, secretNameFor('someone-elses'), 'other']),
        saView(NS, 'builder', ['my-registry']),
      ],
    }),
    expected: { patches: [`default -${A}`], deletes: [`delete ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'CR deleting while a foreign Secret holds its name: the entry naming it is not removed',
    state: state({
      crs: [crView('a', { deleting: true })],
      // listOurSecrets never returns the foreign tcr.ipsa: ourSecrets is empty
      ourSecrets: [],
      serviceAccounts: [saView(NS, 'default', [A])],
    }),
    expected: {},
  },
  {
    title: 'narrowed serviceAccounts while a foreign Secret holds our name: its entry is kept',
    state: state({
      crs: [crView('a', { serviceAccounts: 'builder' })],
      ourSecrets: [],
      serviceAccounts: [saView(NS, 'default', [A]), saView(NS, 'builder', [])],
    }),
    // The create will meet the foreign Secret ('conflict') and the apply step then drops the add.
    expected: { wantedBy: ['a'], writes: [`create ${A}`], patches: [`builder +${A}`], affectedCrs: ['a'] },
  },
  {
    title: 'Secret of ours whose CR no longer exists (orphan): entries removed, Secret deleted',
    state: state({
      crs: [],
      ourSecrets: [ourSecretView(crView('gone'), NS)],
      serviceAccounts: [saView(NS, 'default', [secretNameFor('gone')])],
    }),
    expected: {
      patches: [`default -${secretNameFor('gone')}`],
      deletes: [`delete ${secretNameFor('gone')}@${rvOf(secretNameFor('gone'))}`],
      affectedCrs: ['gone'],
    },
  },
  {
    title: 'orphans with and without the CR-name annotation: both mapped to their CR by name, deleted',
    state: state({
      crs: [],
      ourSecrets: [ourSecretView(crView('gone'), NS), ourSecretView(crView('old'), NS, { oldShape: true })],
      serviceAccounts: [saView(NS, 'default', [secretNameFor('gone'), secretNameFor('old')])],
    }),
    expected: {
      patches: [`default -${secretNameFor('gone')} -${secretNameFor('old')}`],
      deletes: [
        `delete ${secretNameFor('gone')}@${rvOf(secretNameFor('gone'))}`,
        `delete ${secretNameFor('old')}@${rvOf(secretNameFor('old'))}`,
      ],
      affectedCrs: ['gone', 'old'],
    },
  },
  {
    title: 'CR with an invalid spec: its stale Secret and entries are left exactly as they are (frozen)',
    state: state({
      crs: [crView('bad', { invalid: 'spec.docker.server: must not be empty' })],
      ourSecrets: [ourSecretView(crView('bad', { password: 'old' }), NS)],
      serviceAccounts: [saView(NS, 'default', [BAD]), saView(NS, 'builder', [])],
    }),
    expected: {},
  },
  {
    title: 'CR with an invalid spec in a skipped namespace: still frozen, valid CRs are cleaned up',
    state: state({
      namespace: nsView(NS, { annotations: skip }),
      crs: [a, crView('bad', { invalid: 'spec.namespaces: must not contain spaces' })],
      ourSecrets: [secA, ourSecretView(crView('bad'), NS)],
      serviceAccounts: [saView(NS, 'default', [BAD, A])],
    }),
    expected: { patches: [`default -${A}`], deletes: [`delete ${A}@${rvOf(A)}`], affectedCrs: ['a'] },
  },
  {
    title: 'affectedCrs: CRs with a write, delete or entry change, not the converged ones, sorted',
    state: state({
      crs: [crView('d', { serviceAccounts: 'builder' }), crView('c', { deleting: true }), b, a],
      ourSecrets: [secA, ourSecretView(crView('c'), NS), ourSecretView(crView('d'), NS)],
      serviceAccounts: [saView(NS, 'default', [A, C, D]), saView(NS, 'builder', [A, D])],
    }),
    expected: {
      wantedBy: ['d', 'b', 'a'],
      writes: [`create ${B}`],
      patches: [`default +${B} -${C} -${D}`, `builder +${B}`],
      deletes: [`delete ${C}@${rvOf(C)}`],
      unchanged: [D, A],
      affectedCrs: ['b', 'c', 'd'],
    },
  },
];

describe('planNamespace', () => {
  it.each(titled(cases))('%s', (_title, { state: s, expected }) => {
    const plan = planNamespace(NS, s);
    expect(plan.skipped).toBeUndefined();
    expect(summary(plan)).toEqual({ ...none, ...expected });
    const writes =
      (expected.writes?.length ?? 0) + (expected.patches?.length ?? 0) + (expected.deletes?.length ?? 0);
    expect(isNoop(plan)).toBe(writes === 0);
  });

  it('an update carries the new desired Secret (new credentials, our labels, owner) and the old resourceVersion', () => {
    const rotated = crView('a', { password: 'rotated-token' });
    const plan = planNamespace(NS, state({ crs: [rotated], ourSecrets: [secA] }));
    expect(plan.writes).toEqual([
      { op: 'update', cr: 'a', secret: desiredSecretFor(rotated, NS), resourceVersion: secA.resourceVersion },
    ]);
    expect(plan.writes[0]?.secret.data).not.toEqual(secA.data);
  });

  it('a delete carries the uid and resourceVersion it was planned from (preconditions)', () => {
    const plan = planNamespace(NS, state({ crs: [crView('a', { deleting: true })], ourSecrets: [secA] }));
    expect(plan.deletes).toEqual([
      { op: 'delete', cr: 'a', name: A, uid: secA.uid, resourceVersion: secA.resourceVersion },
    ]);
  });

  it('a ServiceAccount patch carries the ServiceAccount as read and tags each added entry with its CR', () => {
    const sa = saView(NS, 'default', ['my-registry'], { resourceVersion: '4711' });
    const plan = planNamespace(NS, state({ crs: [a, b], serviceAccounts: [sa] }));
    expect(plan.serviceAccountPatches).toEqual([
      {
        name: 'default',
        serviceAccount: sa,
        add: [
          { secret: A, cr: 'a' },
          { secret: B, cr: 'b' },
        ],
        remove: [],
      },
    ]);
  });
});

describe('planNamespace: namespaceSelector (ANDed with the namespaces rule)', () => {
  const env = (value?: string): Record<string, string> => (value === undefined ? {} : { env: value });
  const rows: [string, LabelSelector, Record<string, string>, boolean, string?][] = [
    ['matchLabels match', { matchLabels: { env: 'prod' } }, env('prod'), true],
    ['matchLabels other value', { matchLabels: { env: 'prod' } }, env('dev'), false],
    ['matchLabels label absent', { matchLabels: { env: 'prod' } }, env(), false],
    [
      'In: value listed',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stg'] }] },
      env('stg'),
      true,
    ],
    [
      'In: value not listed',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      env('dev'),
      false,
    ],
    [
      'In: label absent',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      env(),
      false,
    ],
    [
      'NotIn: value not listed',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      env('dev'),
      true,
    ],
    [
      'NotIn: label absent',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      env(),
      true,
    ],
    [
      'NotIn: value listed',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      env('prod'),
      false,
    ],
    [
      'Exists: present (empty value)',
      { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      env(''),
      true,
    ],
    ['Exists: absent', { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, env(), false],
    ['DoesNotExist: absent', { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, env(), true],
    [
      'DoesNotExist: present',
      { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
      env('prod'),
      false,
    ],
    [
      'matchLabels AND expressions: both hold',
      { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      { team: 'a', env: 'prod' },
      true,
    ],
    [
      'matchLabels AND expressions: one fails',
      { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      { team: 'a', env: 'dev' },
      false,
    ],
    ['empty selector matches every namespace', {}, env(), true],
    [
      'selector matches but the namespaces rule names another',
      { matchLabels: { env: 'prod' } },
      env('prod'),
      false,
      'other',
    ],
  ];
  it.each(rows.map(([t, ...rest]) => [`${t} → ${rest[2] ? 'wanted' : 'not wanted'}`, ...rest] as const))(
    '%s',
    (_title, namespaceSelector, labels, wanted, namespaces) => {
      const cr = crView('a', { namespaceSelector, namespaces });
      const plan = planNamespace(NS, state({ namespace: nsView(NS, { labels }), crs: [cr] }));
      expect(plan.wantedBy).toEqual(wanted ? ['a'] : []);
      expect(summary(plan).writes).toEqual(wanted ? [`create ${A}`] : []);
      expect(isNoop(plan)).toBe(!wanted);
    },
  );
});

describe('planNamespace: namespaces we write nothing in', () => {
  it.each(
    titled([
      { title: 'namespace missing', namespace: undefined, skipped: 'namespace-not-found' },
      {
        title: 'namespace terminating',
        namespace: nsView(NS, { terminating: true }),
        skipped: 'namespace-terminating',
      },
    ]),
  )('%s → skipped, even with stale Secrets and entries of ours', (_title, { namespace, skipped }) => {
    const plan = planNamespace(
      NS,
      state({
        namespace,
        crs: [crView('a', { deleting: true }), b],
        ourSecrets: [secA],
        serviceAccounts: [saView(NS, 'default', [A])],
      }),
    );
    expect(plan.skipped).toBe(skipped);
    expect(plan.namespace).toBe(NS);
    expect(summary(plan)).toEqual(none);
    expect(isNoop(plan)).toBe(true);
  });
});

describe('planNamespace: purity', () => {
  const deepFreeze = <T>(value: T): T => {
    if (value && typeof value === 'object') {
      for (const v of Object.values(value)) deepFreeze(v);
      Object.freeze(value);
    }
    return value;
  };
  const busy = (): NamespaceState =>
    state({
      crs: [a, crView('b', { serviceAccounts: 'builder' }), crView('c', { deleting: true })],
      ourSecrets: [ourSecretView(crView('a', { password: 'old' }), NS), ourSecretView(crView('c'), NS)],
      serviceAccounts: [saView(NS, 'default', ['x', C]), saView(NS, 'builder', [C])],
    });

  it('same state in, same plan out; the input is never mutated (deep-frozen input is accepted)', () => {
    const input = deepFreeze(busy());
    const first = planNamespace(NS, input);
    const second = planNamespace(NS, input);
    expect(second).toEqual(first);
    expect(input).toEqual(busy());
  });
});

describe('planNamespace: deleting a CR whose spec is invalid', () => {
  // Deletion needs no spec (the Secret name comes from the CR name): the CR must not hang in Terminating.
  it('a deleting CR with an invalid spec still gets its Secrets and entries removed', () => {
    const bad: CrView = crView('bad', { deleting: true, invalid: 'spec.docker.server: must not be empty' });
    const secBad: SecretView = ourSecretView(crView('bad'), NS);
    const plan = planNamespace(
      NS,
      state({ crs: [bad], ourSecrets: [secBad], serviceAccounts: [saView(NS, 'default', [BAD])] }),
    );
    expect(summary(plan)).toEqual({
      ...none,
      patches: [`default -${BAD}`],
      deletes: [`delete ${BAD}@${rvOf(BAD)}`],
      affectedCrs: ['bad'],
    });
  });
});

describe('planNamespace: our Secrets that are not pull Secrets', () => {
  it('never deletes the token store (our label, not a tcr.ips* name) in a namespace the CRs match', () => {
    const tokenStore = {
      ...ourSecretView(a, NS),
      name: 'tcr-token.tcr-local1.longterm',
      crName: undefined,
      type: 'Opaque',
    };
    const plan = planNamespace(NS, state({ crs: [a], ourSecrets: [secA, tokenStore] }));
    expect(plan.deletes).toEqual([]);
    expect(summary(plan).deletes).toEqual([]);
  });
});

describe('planNamespace: entries left by a CR deleted without its finalizer (issue 14)', () => {
  const gone = secretNameFor('gone');
  const withEntries = [saView(NS, 'default', ['mine', gone, A]), saView(NS, 'builder', [gone])];

  it('lists an entry of a CR that does not exist, with no Secret of ours, as a candidate', () => {
    expect(danglingCandidates(state({ crs: [a], ourSecrets: [secA], serviceAccounts: withEntries }))).toEqual(
      [gone],
    );
    // The CR exists (waiting, invalid or being deleted: its own rules apply), or our Secret is still there.
    expect(danglingCandidates(state({ crs: [a, crView('gone')], serviceAccounts: withEntries }))).toEqual([]);
  });

  it('removes it only once checked, and only if no Secret of that name exists (someone else’s is kept)', () => {
    const unchecked = planNamespace(
      NS,
      state({ crs: [a], ourSecrets: [secA], serviceAccounts: withEntries }),
    );
    const removals = (plan: NamespacePlan) =>
      plan.serviceAccountPatches.filter((p) => p.remove.length > 0).map((p) => [p.name, p.remove]);
    expect(removals(unchecked)).toEqual([]);
    const checked = planNamespace(
      NS,
      state({ crs: [a], ourSecrets: [secA], serviceAccounts: withEntries, presentSecretNames: new Set() }),
    );
    expect(removals(checked)).toEqual([
      ['default', [gone]],
      ['builder', [gone]],
    ]);
    // Status refreshes only for CRs that exist.
    expect(checked.affectedCrs).toEqual(['a']);
    const foreign = planNamespace(
      NS,
      state({
        crs: [a],
        ourSecrets: [secA],
        serviceAccounts: withEntries,
        presentSecretNames: new Set([gone]),
      }),
    );
    expect(removals(foreign)).toEqual([]);
  });
});
