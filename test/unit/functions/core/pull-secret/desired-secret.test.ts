import { describe, expect, it } from 'vitest';
import { toSecretBody } from '../../../../../functions/adapters/kube/views.js';
import type { CrView, SecretView } from '../../../../../functions/core/model.js';
import {
  crNameOfSecret,
  desiredSecretFor,
  isSecretConverged,
  secretDataDigest,
} from '../../../../../functions/core/pull-secret/desired-secret.js';
import { CR_NAME_ANNOTATION, CR_UID_LABEL } from '../../../../../shared/contracts/labels.js';
import { API_VERSION, KIND } from '../../../../../shared/contracts/names.js';

const cr = {
  name: 'cr1',
  uid: 'uid-1',
  credential: { server: 'r.example.com', username: 'u', password: 'p' },
} as CrView;
const desired = desiredSecretFor(cr, 'a');

const stored = (data: Record<string, string>, extra: Partial<SecretView> = {}): SecretView => ({
  namespace: 'a',
  name: desired.name,
  uid: 's1',
  resourceVersion: '1',
  type: desired.type,
  ours: true,
  labels: desired.labels,
  annotations: {},
  data,
  ...extra,
});

describe('isSecretConverged: data compared as stored, or by digest (the worker view keeps no credentials)', () => {
  it.each([
    ['the same data', stored(desired.data), true],
    ['other data', stored({ '.dockerconfigjson': 'other' }), false],
    ['an extra key', stored({ ...desired.data, extra: 'x' }), false],
    ['the digest of the same data', stored({}, { dataDigest: secretDataDigest(desired.data) }), true],
    [
      'the digest of other data',
      stored({}, { dataDigest: secretDataDigest({ '.dockerconfigjson': 'o' }) }),
      false,
    ],
    [
      'the digest of the data with an extra key',
      stored({}, { dataDigest: secretDataDigest({ ...desired.data, extra: 'x' }) }),
      false,
    ],
  ])('%s', (_, actual, converged) => {
    expect(isSecretConverged(actual, desired)).toBe(converged);
  });

  // Upgrade: Secrets written before issue #15 carry the CR-name annotation; they cost no write for it.
  const oldShape = { annotations: { [CR_NAME_ANNOTATION]: 'cr1' } };
  it.each([
    ['an old Secret (CR-name annotation) with the same data', stored(desired.data, oldShape), true],
    [
      'an old Secret (CR-name annotation) as the view keeps it, same data',
      stored({}, { ...oldShape, dataDigest: secretDataDigest(desired.data) }),
      true,
    ],
    [
      'an old Secret (CR-name annotation) with other data',
      stored({ '.dockerconfigjson': 'o' }, oldShape),
      false,
    ],
    [
      "someone's annotation on our Secret, same data",
      stored(desired.data, { annotations: { 'example.com/note': 'x' } }),
      true,
    ],
    [
      'a Secret missing our uid label',
      stored(desired.data, { labels: { 'app.kubernetes.io/managed-by': 'tcr-assistant' } }),
      false,
    ],
    [
      'a Secret labelled for an earlier CR of that name',
      stored(desired.data, { labels: { ...desired.labels, [CR_UID_LABEL]: 'uid-0' } }),
      false,
    ],
    // Versions before the owner reference was dropped: it is no reason to write.
    [
      'an old Secret (owner reference to the CR) with the same data',
      stored(desired.data, { owners: [{ apiVersion: API_VERSION, kind: KIND, name: 'cr1' }] }),
      true,
    ],
  ])('%s', (_, actual, converged) => {
    expect(isSecretConverged(actual, desired)).toBe(converged);
  });
});

describe('the pull Secret we write carries no annotation nor owner reference (issue #15)', () => {
  it('neither the desired Secret nor the body sent to the API server has either; the two labels stay', () => {
    expect(desired).not.toHaveProperty('annotations');
    const body = toSecretBody(desired);
    expect(body.metadata?.annotations).toBeUndefined();
    expect(body.metadata?.labels).toEqual({
      'app.kubernetes.io/managed-by': 'tcr-assistant',
      'tcr.tencentcloudcr.com/imagepullsecret-uid': 'uid-1',
    });
    expect(body.metadata?.ownerReferences).toBeUndefined();
    expect(Object.keys(body.metadata ?? {}).sort()).toEqual(['labels', 'name', 'namespace']);
  });

  it.each([
    ['without annotation', stored(desired.data), 'cr1'],
    [
      'with the old annotation',
      stored(desired.data, { annotations: { [CR_NAME_ANNOTATION]: 'cr1' } }),
      'cr1',
    ],
    ['a long CR name, no annotation', stored({}, { name: `tcr.ips${'x'.repeat(246)}` }), 'x'.repeat(246)],
    ['a dotted CR name, no annotation', stored({}, { name: 'tcr.ipsteam.a-b' }), 'team.a-b'],
  ])('a Secret %s maps to its CR by its name', (_, secret, cr) => {
    expect(crNameOfSecret(secret)).toBe(cr);
  });

  it('the digest does not depend on key order and is not the data', () => {
    expect(secretDataDigest({ a: '1', b: '2' })).toBe(secretDataDigest({ b: '2', a: '1' }));
    expect(secretDataDigest(desired.data)).not.toContain(desired.data['.dockerconfigjson']);
  });
});

describe('desiredSecretFor: one rendering per credential, never a stale one', () => {
  const credential = { server: 'r.example.com', username: 'u', password: 'p1' };
  const crOf = (c: typeof credential) => ({ name: 'cr1', uid: 'uid-1', credential: c }) as CrView;

  it("shares one frozen data object across a CR's namespaces, with the digest of freshly built data", () => {
    const a = desiredSecretFor(crOf(credential), 'a');
    const b = desiredSecretFor(crOf(credential), 'b');
    expect(b.data).toBe(a.data);
    expect(Object.isFrozen(a.data)).toBe(true);
    expect(secretDataDigest(a.data)).toBe(secretDataDigest({ ...a.data }));
    expect(secretDataDigest(a.data)).toBe(secretDataDigest(a.data));
  });

  it('renders again when the same credential object now holds another password', () => {
    const changing = { ...credential };
    const before = desiredSecretFor(crOf(changing), 'a').data;
    changing.password = 'p2';
    const after = desiredSecretFor(crOf(changing), 'a').data;
    expect(after).not.toBe(before);
    expect(after).toEqual(desiredSecretFor(crOf({ ...credential, password: 'p2' }), 'a').data);
    expect(secretDataDigest(after)).not.toBe(secretDataDigest(before));
  });
});
