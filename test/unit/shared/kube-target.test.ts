import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { inClusterTarget, targetFromKubeconfig, tokenFileReader } from '../../../shared/kube/kube-target.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A kubeconfig with two contexts; `user` overrides the first user's fields. */
function kubeconfig(user: Record<string, unknown> = {}, cluster: Record<string, unknown> = {}) {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'one',
        cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA1'), ...cluster },
      },
      {
        name: 'two',
        cluster: { server: 'https://127.0.0.2:7443/prefix/', 'certificate-authority': 'ca2.crt' },
      },
    ],
    users: [
      {
        name: 'cert',
        user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY'), ...user },
      },
      { name: 'tok', user: { tokenFile: 'token' } },
    ],
    contexts: [
      { name: 'a', context: { cluster: 'one', user: 'cert' } },
      { name: 'b', context: { cluster: 'two', user: 'tok' } },
    ],
    'current-context': 'a',
  });
}

describe('targetFromKubeconfig', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kube-target-'));
  const file = path.join(dir, 'config');
  writeFileSync(path.join(dir, 'ca2.crt'), 'CA2');
  writeFileSync(path.join(dir, 'token'), 'file-token\n');

  it('reads the current context: server, CA data, client certificate and key, impersonation', () => {
    const t = targetFromKubeconfig(kubeconfig({ as: 'system:serviceaccount:x:y', 'as-groups': ['g'] }), {
      file,
    });
    expect(t.server).toBe('https://127.0.0.1:6443');
    expect(t.ca?.toString()).toBe('CA1');
    expect(t.cert?.toString()).toBe('CERT');
    expect(t.key?.toString()).toBe('KEY');
    expect(t.token).toBeUndefined();
    expect(t.impersonate).toEqual({ user: 'system:serviceaccount:x:y', groups: ['g'], uid: undefined });
  });

  it('reads a named context, its CA and token from files relative to the kubeconfig', () => {
    const t = targetFromKubeconfig(kubeconfig(), { file, context: 'b' });
    expect(t.server).toBe('https://127.0.0.2:7443/prefix');
    expect(t.ca?.toString()).toBe('CA2');
    expect(t.token?.()).toBe('file-token');
    expect(t.cert).toBeUndefined();
  });

  it('takes an inline token', () => {
    const t = targetFromKubeconfig(
      kubeconfig({ 'client-certificate-data': undefined, 'client-key-data': undefined, token: 'abc' }),
      { file },
    );
    expect(t.token?.()).toBe('abc');
  });

  it.each([
    [{ exec: { command: 'aws' } }, {}, /user "cert" uses exec \(exec credential plugins\)/],
    [{ 'auth-provider': { name: 'oidc' } }, {}, /uses auth-provider \(auth providers\)/],
    [{ username: 'u', password: 'p' }, {}, /uses username \(basic authentication\)/],
    [{ 'client-key-data': undefined }, {}, /client certificate without its key/],
    [{}, { 'proxy-url': 'http://127.0.0.1:3128' }, /proxy-url is not supported/],
    [{}, { 'insecure-skip-tls-verify': true }, /insecure-skip-tls-verify is not supported/],
    [{}, { server: 'http://127.0.0.1:8080' }, /server must be https:\/\//],
  ])('refuses what it does not support, naming it: %j %j', (user, cluster, message) => {
    expect(() => targetFromKubeconfig(kubeconfig(user, cluster), { file })).toThrow(message);
  });

  it('names a missing context and the ones it has', () => {
    expect(() => targetFromKubeconfig(kubeconfig(), { file, context: 'c' })).toThrow(
      `kubeconfig ${file} has no context "c" (it has: a, b)`,
    );
  });

  it('names an unreadable certificate file without reading anything else', () => {
    const text = kubeconfig({ 'client-certificate-data': undefined, 'client-certificate': 'nope.crt' });
    expect(() => targetFromKubeconfig(text, { file })).toThrow(
      /cannot read client-certificate .*nope\.crt: ENOENT/,
    );
  });

  it('refuses a file that is not a kubeconfig, and never quotes a credential', () => {
    expect(() => targetFromKubeconfig('clusters: 3', { file })).toThrow(/is not a kubeconfig: clusters:/);
    expect(() => targetFromKubeconfig('{', { file })).toThrow(/is not valid YAML/);
    const secret = 'sekret-token-value';
    try {
      targetFromKubeconfig(kubeconfig({ token: secret, exec: { command: 'x' } }), { file });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).not.toContain(secret);
    }
  });
});

describe('in-cluster', () => {
  it('uses KUBERNETES_SERVICE_HOST/PORT (IPv6 in brackets), the token and CA files', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sa-'));
    writeFileSync(path.join(dir, 'token'), 'tok');
    writeFileSync(path.join(dir, 'ca.crt'), 'CA');
    const t = inClusterTarget({ KUBERNETES_SERVICE_HOST: '::1', KUBERNETES_SERVICE_PORT: '6443' }, dir);
    expect(t.server).toBe('https://[::1]:6443');
    expect(t.token?.()).toBe('tok');
    expect(t.ca?.toString()).toBe('CA');
  });

  it('says it is not in a cluster, and names a missing token file', () => {
    expect(() => inClusterTarget({}, '/nonexistent')).toThrow(/KUBERNETES_SERVICE_HOST/);
    expect(() =>
      inClusterTarget({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' }, '/nonexistent'),
    ).toThrow('cannot read the token file /nonexistent/token: ENOENT');
  });
});

describe('tokenFileReader', () => {
  it('re-reads a rotated token at most once a minute and keeps the last one while the file is swapped', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const file = path.join(dir, 'token');
    writeFileSync(file, 'one');
    let now = 1_000_000;
    const token = tokenFileReader(file, () => now);
    expect(token()).toBe('one');
    writeFileSync(file, 'two');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    now += 30_000;
    expect(token()).toBe('one');
    now += 31_000;
    expect(token()).toBe('two');
    writeFileSync(file, 'three');
    utimesSync(file, new Date(), new Date(Date.now() + 10_000));
    now += 61_000;
    expect(token()).toBe('three');
  });
});
