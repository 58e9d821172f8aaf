import { describe, expect, it } from 'vitest';
import { planContentRewrites } from '../../../../../functions/core/image-pull-secret/plan-content-rewrites.js';
import type { CrView, NamespaceView, SecretView } from '../../../../../functions/core/model.js';
import { secretDataDigest } from '../../../../../functions/core/pull-secret/desired-secret.js';
import { SKIP_ANNOTATION } from '../../../../../shared/contracts/labels.js';
import { crView, foreignSecretView, nsView, ourSecretView } from '../../../../support/fake-cluster.js';

const fresh = crView('a', { password: 'new' });
const old = crView('a', { password: 'old' });
/** As the worker view keeps it: no data, its digest. */
const asViewed = (s: SecretView): SecretView => ({ ...s, data: {}, dataDigest: secretDataDigest(s.data) });

const rows: {
  title: string;
  cr?: CrView;
  secrets: SecretView[];
  namespaces?: NamespaceView[];
  want: string[];
}[] = [
  { title: 'a stale Secret of ours is rewritten', secrets: [ourSecretView(old, 'n1')], want: ['n1'] },
  {
    title: 'a stale Secret as the view keeps it (digest only) is rewritten',
    secrets: [asViewed(ourSecretView(old, 'n1'))],
    want: ['n1'],
  },
  {
    title: 'a current Secret (digest) costs nothing',
    secrets: [asViewed(ourSecretView(fresh, 'n1'))],
    want: [],
  },
  { title: 'a current Secret costs nothing', secrets: [ourSecretView(fresh, 'n1')], want: [] },
  {
    title: 'a current Secret of an earlier version (CR-name annotation) costs nothing',
    secrets: [asViewed(ourSecretView(fresh, 'n1', { oldShape: true }))],
    want: [],
  },
  {
    title: 'a stale Secret of an earlier version (CR-name annotation) is rewritten',
    secrets: [asViewed(ourSecretView(old, 'n1', { oldShape: true }))],
    want: ['n1'],
  },
  {
    title: 'sorted by namespace, each guarded by its own resourceVersion',
    secrets: [ourSecretView(old, 'n2'), ourSecretView(old, 'n1'), ourSecretView(fresh, 'n3')],
    namespaces: [nsView('n1'), nsView('n2'), nsView('n3')],
    want: ['n1', 'n2'],
  },
  {
    title: "someone else's Secret of our name is never written",
    secrets: [foreignSecretView('n1', 'tcr.ipsa')],
    want: [],
  },
  {
    title: 'another CR’s Secret is not this job’s',
    secrets: [ourSecretView(crView('b', { password: 'old' }), 'n1')],
    want: [],
  },
  {
    title: 'a Secret of an earlier CR of the same name (older uid) is left to the full plan',
    secrets: [ourSecretView({ ...old, uid: 'uid-cr-a-before' }, 'n1')],
    want: [],
  },
  {
    title: 'a namespace the view does not know is left to the full plan',
    secrets: [ourSecretView(old, 'n1')],
    namespaces: [],
    want: [],
  },
  {
    title: 'a namespace no longer wanted (skip annotation) is left to its namespace job',
    secrets: [ourSecretView(old, 'n1')],
    namespaces: [nsView('n1', { annotations: { [SKIP_ANNOTATION]: 'true' } })],
    want: [],
  },
  {
    title: 'a terminating namespace gets no write',
    secrets: [ourSecretView(old, 'n1')],
    namespaces: [nsView('n1', { terminating: true })],
    want: [],
  },
  {
    title: 'a namespace outside the selector is left to its namespace job',
    cr: crView('a', { password: 'new', namespaceSelector: { matchLabels: { team: 'x' } } }),
    secrets: [ourSecretView(old, 'n1'), ourSecretView(old, 'n2')],
    namespaces: [nsView('n1', { labels: { team: 'x' } }), nsView('n2')],
    want: ['n1'],
  },
  {
    title: 'a CR awaiting its credential rewrites nothing',
    cr: crView('a', { awaitingCredential: true }),
    secrets: [ourSecretView(old, 'n1')],
    want: [],
  },
  {
    title: 'a CR being deleted rewrites nothing',
    cr: crView('a', { password: 'new', deleting: true }),
    secrets: [ourSecretView(old, 'n1')],
    want: [],
  },
];

describe('planContentRewrites', () => {
  it.each(rows.map((r) => [r.title, r] as const))('%s', (_title, row) => {
    const namespaces = new Map(
      (row.namespaces ?? row.secrets.map((s) => nsView(s.namespace))).map((n) => [n.name, n]),
    );
    const plan = planContentRewrites(row.cr ?? fresh, row.secrets, (n) => namespaces.get(n));
    expect(plan.map((u) => u.namespace)).toEqual(row.want);
    for (const u of plan)
      expect(u.resourceVersion).toBe(row.secrets.find((s) => s.namespace === u.namespace)?.resourceVersion);
  });
});
