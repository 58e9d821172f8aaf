import { describe, expect, it } from 'vitest';
import type { CrView, SecretView } from '../../../../../functions/core/model.js';
import {
  desiredSecretFor,
  isSecretConverged,
  secretDataDigest,
} from '../../../../../functions/core/pull-secret/desired-secret.js';

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
  annotations: desired.annotations,
  data,
  ownerUid: cr.uid,
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

  it('the digest does not depend on key order and is not the data', () => {
    expect(secretDataDigest({ a: '1', b: '2' })).toBe(secretDataDigest({ b: '2', a: '1' }));
    expect(secretDataDigest(desired.data)).not.toContain(desired.data['.dockerconfigjson']);
  });
});
