import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { clientNodeConnection, PREPARED_FOR_MS } from '../../../shared/kube/client-node-connection.js';

/** A KubeConfig with a bearer token whose value the test changes, counting client-node's credential work. */
function kubeConfig() {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443/', skipTLSVerify: false }],
    users: [{ name: 'u', token: 'token-1' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const state = { calls: 0, fail: false };
  const apply = kc.applyToHTTPSOptions.bind(kc);
  kc.applyToHTTPSOptions = async (opts) => {
    state.calls += 1;
    if (state.fail) throw new Error('exec plugin failed');
    await apply(opts);
  };
  return { kc, state };
}

describe('clientNodeConnection: client-node credentials, asked once per second', () => {
  it('serves one answer for PREPARED_FOR_MS, then asks again and sees a new token', async () => {
    const { kc, state } = kubeConfig();
    let t = 0;
    const connection = clientNodeConnection(kc, () => t);
    expect(connection.server).toBe('https://127.0.0.1:6443');
    const first = await connection.prepare();
    expect(first.headers.Authorization).toBe('Bearer token-1');
    await Promise.all([connection.prepare(), connection.prepare()]);
    t = PREPARED_FOR_MS - 1;
    await connection.prepare();
    expect(state.calls).toBe(1);

    (kc.getCurrentUser() as { token: string }).token = 'token-2';
    t = PREPARED_FOR_MS;
    expect((await connection.prepare()).headers.Authorization).toBe('Bearer token-2');
    expect(state.calls).toBe(2);
  });

  it('does not keep a failure: the next request asks again', async () => {
    const { kc, state } = kubeConfig();
    const connection = clientNodeConnection(kc, () => 0);
    state.fail = true;
    await expect(connection.prepare()).rejects.toThrow('exec plugin failed');
    state.fail = false;
    expect((await connection.prepare()).headers.Authorization).toBe('Bearer token-1');
    expect(state.calls).toBe(2);
  });
});
