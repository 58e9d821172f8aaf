import { describe, expect, it } from 'vitest';
import { planNamespace } from '../../../functions/core/namespace/plan-namespace.js';
import { FIELD_MANAGER, SKIP_ANNOTATION } from '../../../shared/contracts/labels.js';
import type { MatchableCr, MatchableNamespace } from '../../../shared/contracts/matching.js';
import { secretNameFor } from '../../../shared/contracts/names.js';
import {
  type AdmissionRequest,
  AdmissionReview,
  admissionResponse,
  type Decision,
  decideServiceAccount,
  type ViewSnapshot,
} from '../../../webhook/admission.js';
import { crOf, namespaceOf } from '../../../webhook/view.js';
import { crView, nsView, saView } from '../../support/fake-cluster.js';

const A = secretNameFor('a');
const B = secretNameFor('b');
const skip = { [SKIP_ANNOTATION]: 'true' };

const cr = (name: string, spec: MatchableCr['spec'] = {}, extra: Partial<MatchableCr> = {}): MatchableCr => ({
  name,
  deleting: false,
  spec: { namespaces: '*', serviceAccounts: '*', ...spec },
  ...extra,
});
const ns = (name = 'team-a', labels: Record<string, string> = {}, annotations = {}): MatchableNamespace => ({
  name,
  labels,
  annotations,
  terminating: false,
});
const sa = (name: string, entries?: string[], annotations?: Record<string, string>) => ({
  metadata: { name, namespace: 'team-a', ...(annotations ? { annotations } : {}) },
  ...(entries ? { imagePullSecrets: entries.map((n) => ({ name: n })) } : {}),
});
const request = (object: unknown, extra: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: 'u-1',
  kind: { group: '', version: 'v1', kind: 'ServiceAccount' },
  namespace: 'team-a',
  operation: 'CREATE',
  object,
  ...extra,
});
const view = (crs: MatchableCr[], namespace: MatchableNamespace | undefined = ns()): ViewSnapshot => ({
  synced: true,
  crs,
  namespace,
});

interface Case {
  title: string;
  request: AdmissionRequest;
  view: ViewSnapshot;
  outcome: Decision['outcome'];
  added?: string[];
  patch?: Decision['patch'];
}

const cases: Case[] = [
  {
    title: 'new ServiceAccount, two CRs for all: both entries, as a new list',
    request: request(sa('default')),
    view: view([cr('a'), cr('b')]),
    outcome: 'patched',
    added: [A, B],
    patch: [{ op: 'add', path: '/imagePullSecrets', value: [{ name: A }, { name: B }] }],
  },
  {
    title: 'entries of others are kept: ours are appended',
    request: request(sa('default', ['mine'])),
    view: view([cr('a')]),
    outcome: 'patched',
    added: [A],
    patch: [{ op: 'add', path: '/imagePullSecrets/-', value: { name: A } }],
  },
  {
    title: 'an empty list is appended to, not replaced',
    request: request(sa('default', [])),
    view: view([cr('a')]),
    outcome: 'patched',
    patch: [{ op: 'add', path: '/imagePullSecrets/-', value: { name: A } }],
  },
  {
    title: 'already carries the entry (e.g. reinvoked): unchanged',
    request: request(sa('default', [A])),
    view: view([cr('a')]),
    outcome: 'unchanged',
  },
  {
    title: 'namespace not in the names rule: unchanged',
    request: request(sa('default')),
    view: view([cr('a', { namespaces: 'team-b,team-c' })]),
    outcome: 'not-selected',
  },
  {
    title: 'namespace named in the names rule: patched',
    request: request(sa('default')),
    view: view([cr('a', { namespaces: 'team-b,team-a' })]),
    outcome: 'patched',
    added: [A],
  },
  {
    title: 'namespace selector not matching the labels: unchanged',
    request: request(sa('default')),
    view: view(
      [cr('a', { namespaceSelector: { matchLabels: { team: 'payments' } } })],
      ns('team-a', { team: 'x' }),
    ),
    outcome: 'not-selected',
  },
  {
    title: 'namespace selector matching: patched',
    request: request(sa('default')),
    view: view(
      [
        cr('a', {
          namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['x'] }] },
        }),
      ],
      ns('team-a', { team: 'x' }),
    ),
    outcome: 'patched',
    added: [A],
  },
  {
    title: 'skipped namespace: unchanged',
    request: request(sa('default')),
    view: view([cr('a')], ns('team-a', {}, skip)),
    outcome: 'not-selected',
  },
  {
    title: 'skipped ServiceAccount: unchanged',
    request: request(sa('builder', undefined, skip)),
    view: view([cr('a')]),
    outcome: 'not-selected',
  },
  {
    title: 'ServiceAccount not in the serviceAccounts rule: only the CR that names it',
    request: request(sa('builder')),
    view: view([cr('a', { serviceAccounts: 'default' }), cr('b', { serviceAccounts: 'default,builder' })]),
    outcome: 'patched',
    added: [B],
  },
  {
    title: 'a CR being deleted or with an invalid spec wants nothing',
    request: request(sa('default')),
    view: view([cr('a', {}, { deleting: true }), cr('b', {}, { invalid: 'spec.docker.server: ...' })]),
    outcome: 'not-selected',
  },
  {
    title: 'terminating namespace: unchanged',
    request: request(sa('default')),
    view: view([cr('a')], { ...ns(), terminating: true }),
    outcome: 'not-selected',
  },
  {
    title: 'namespace the view has not seen: unchanged (the job path adds it)',
    request: request(sa('default')),
    view: { synced: true, crs: [cr('a')], namespace: undefined },
    outcome: 'namespace-unknown',
  },
  {
    title: 'view not synced yet: unchanged',
    request: request(sa('default')),
    view: { synced: false, crs: [cr('a')], namespace: ns() },
    outcome: 'not-synced',
  },
  {
    title: 'UPDATE that drops our entry (a PUT of a manifest without it): put back',
    request: request(sa('default', ['mine']), {
      operation: 'UPDATE',
      oldObject: sa('default', ['mine', A]),
      options: { fieldManager: 'kubectl-client-side-apply' },
    }),
    view: view([cr('a'), cr('b')]),
    outcome: 'patched',
    added: [A],
    patch: [{ op: 'add', path: '/imagePullSecrets/-', value: { name: A } }],
  },
  {
    title: 'UPDATE by our own functions (removing on purpose): left alone',
    request: request(sa('default', []), {
      operation: 'UPDATE',
      oldObject: sa('default', [A]),
      options: { fieldManager: FIELD_MANAGER },
    }),
    view: view([cr('a')]),
    outcome: 'own-write',
  },
  {
    title: 'UPDATE that sets the skip annotation and drops our entry: left dropped',
    request: request(sa('default', [], skip), { operation: 'UPDATE', oldObject: sa('default', [A]) }),
    view: view([cr('a')]),
    outcome: 'not-selected',
  },
  {
    title: 'UPDATE never adds what the old object did not have (that is the job path’s to add)',
    request: request(sa('default'), { operation: 'UPDATE', oldObject: sa('default') }),
    view: view([cr('a')]),
    outcome: 'unchanged',
  },
  {
    title: 'not a ServiceAccount: unchanged',
    request: request({ metadata: { name: 'p' } }, { kind: { group: '', version: 'v1', kind: 'Pod' } }),
    view: view([cr('a')]),
    outcome: 'invalid',
  },
];

describe('admission decision for ServiceAccounts', () => {
  it.each(cases.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const decision = decideServiceAccount(c.request, c.view);
    expect(decision.outcome).toBe(c.outcome);
    if (c.added) expect(decision.added).toEqual(c.added);
    if (c.patch) expect(decision.patch).toEqual(c.patch);
    if (c.outcome !== 'patched') expect(decision.patch).toEqual([]);
  });

  it('answers allowed with a base64 JSON patch, and allowed without one when nothing changes', () => {
    const patched = admissionResponse('u-9', decideServiceAccount(request(sa('default')), view([cr('a')])));
    expect(patched).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-9', allowed: true, patchType: 'JSONPatch' },
    });
    const patch = (patched as { response: { patch: string } }).response.patch;
    expect(JSON.parse(Buffer.from(patch, 'base64').toString())).toEqual([
      { op: 'add', path: '/imagePullSecrets', value: [{ name: A }] },
    ]);
    const unchanged = admissionResponse('u-9', decideServiceAccount(request(sa('default')), view([])));
    expect(unchanged).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-9', allowed: true },
    });
  });

  it('refuses a review that is not admission.k8s.io/v1, naming what to set', () => {
    const result = AdmissionReview.safeParse({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/admissionReviewVersions/);
  });
});

describe('the webhook and the job path agree', () => {
  // The same table of CRs and namespaces through both: the entries the webhook adds at creation are exactly
  // the ones the namespace planner would patch in, so the job finds nothing left to write.
  const rawCr = (name: string, spec: Record<string, unknown>) => ({
    metadata: { name },
    spec: { namespaces: '*', docker: { server: 'r.example.com', username: 'u', password: 'p' }, ...spec },
  });
  const crs = [
    rawCr('a', {}),
    rawCr('b', { serviceAccounts: 'builder' }),
    rawCr('c', { namespaces: 'team-a,team-b' }),
    rawCr('d', { namespaceSelector: { matchLabels: { team: 'x' } } }),
    rawCr('e', {
      namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
    }),
    rawCr('f', { docker: { server: 'https://bad' } }),
  ];
  const namespace = (name: string, labels: Record<string, string>, annotations = {}) => ({
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels }, annotations },
  });
  const namespaces = [
    namespace('team-a', { team: 'x' }),
    namespace('team-b', { env: 'prod' }),
    namespace('team-c', {}, skip),
    namespace('team-d', { team: 'y', env: 'dev' }),
  ];
  const accounts = [
    { name: 'default', annotations: {} },
    { name: 'builder', annotations: {} },
    { name: 'deployer', annotations: skip },
  ];
  const rows = namespaces.flatMap((n) => accounts.map((a) => [n.metadata.name, a.name, n, a] as const));

  it.each(rows)('%s/%s', (_n, _a, rawNs, account) => {
    const webhook = decideServiceAccount(
      request(sa(account.name, undefined, account.annotations), { namespace: rawNs.metadata.name }),
      { synced: true, crs: crs.map((c) => crOf(c)), namespace: namespaceOf(rawNs) },
    );
    const plan = planNamespace(rawNs.metadata.name, {
      namespace: nsView(rawNs.metadata.name, {
        labels: rawNs.metadata.labels,
        annotations: rawNs.metadata.annotations,
      }),
      crs: crs.map((c) => {
        const view = crOf(c);
        return crView(c.metadata.name, { ...view.spec, ...(view.invalid ? { invalid: view.invalid } : {}) });
      }),
      ourSecrets: [],
      serviceAccounts: [saView(rawNs.metadata.name, account.name, [], { annotations: account.annotations })],
    });
    const planned = plan.serviceAccountPatches.flatMap((p) => p.add.map((x) => x.secret));
    expect(webhook.added).toEqual(planned);
  });
});
