import { describe, expect, it } from 'vitest';
import { fingerprintOf, isEchoOfOwnWrite, jobsFor } from '../../../relay/map-events.js';

const sa = (entries: string[], labels: Record<string, string> = {}) => ({
  metadata: { name: 'default', namespace: 'ns', labels },
  imagePullSecrets: entries.map((name) => ({ name })),
});
const fp = (entries: string[], labels?: Record<string, string>) =>
  fingerprintOf('serviceaccount', sa(entries, labels));

describe('relay event mapping', () => {
  it.each([
    ['our entry added (the echo of our own patch)', ['x'], ['x', 'tcr.ipsa'], true],
    ['a second entry of ours added', ['tcr.ipsa'], ['tcr.ipsa', 'tcr.ipsb'], true],
    ['our entry removed by someone', ['x', 'tcr.ipsa'], ['x'], false],
    ['an entry of someone else added', ['tcr.ipsa'], ['tcr.ipsa', 'y'], false],
    ['ours replaced by another of ours', ['tcr.ipsa'], ['tcr.ipsb'], false],
    ['nothing changed', ['tcr.ipsa'], ['tcr.ipsa'], false],
  ])('%s → echo: %s', (_title, before, after, echo) => {
    expect(isEchoOfOwnWrite('serviceaccount', fp(before), fp(after))).toBe(echo);
  });

  it('a label change is never an echo, even with an entry of ours added', () => {
    expect(isEchoOfOwnWrite('serviceaccount', fp([]), fp(['tcr.ipsa'], { team: 'x' }))).toBe(false);
  });

  it('CR status changes do not change the CR fingerprint; spec (generation) and deletion do', () => {
    const cr = (generation: number, extra: object = {}) => ({
      metadata: { name: 'c', generation, ...extra },
    });
    expect(fingerprintOf('imagepullsecret', { ...cr(1), status: { secretsSuccess: 3 } } as never)).toBe(
      fingerprintOf('imagepullsecret', cr(1)),
    );
    expect(fingerprintOf('imagepullsecret', cr(2))).not.toBe(fingerprintOf('imagepullsecret', cr(1)));
    expect(fingerprintOf('imagepullsecret', cr(1, { deletionTimestamp: 'x' }))).not.toBe(
      fingerprintOf('imagepullsecret', cr(1)),
    );
  });

  it('maps a deleted namespace to status jobs of every CR, and a deleted ServiceAccount to nothing', () => {
    const ctx = { cluster: 'c1', crNames: () => ['a', 'b'], at: 1 };
    expect(jobsFor('namespace', 'deleted', 'ns', ctx).map((j) => `${j.key.kind}/${j.key.name}`)).toEqual([
      'imagepullsecret-status/a',
      'imagepullsecret-status/b',
    ]);
    expect(jobsFor('serviceaccount', 'deleted', 'ns/default', ctx)).toEqual([]);
    expect(jobsFor('serviceaccount', 'added', 'ns/default', ctx)[0]?.key).toEqual({
      cluster: 'c1',
      kind: 'serviceaccount',
      namespace: 'ns',
      name: 'default',
    });
  });
});
