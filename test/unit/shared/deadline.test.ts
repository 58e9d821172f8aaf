import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../../functions/adapters/kube/kube-cluster.js';
import {
  abortable,
  bindSignal,
  DeadlineExceededError,
  linkSignals,
  startDeadline,
  throwIfAborted,
} from '../../../shared/deadline.js';
import { RetryableError } from '../../../shared/errors.js';
import { signalOptions } from '../../../shared/kube/abort.js';

describe('deadlines', () => {
  it('abort at their time with a retryable DeadlineExceededError naming the work', async () => {
    const d = startDeadline(30, 'job namespace a @c');
    expect(d.signal.aborted).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(true);
    expect(() => throwIfAborted(d.signal)).toThrow(DeadlineExceededError);
    expect(d.signal.reason).toBeInstanceOf(RetryableError);
    expect(String(d.signal.reason.message)).toMatch(/job namespace a @c: deadline of 30 ms exceeded/);
  });

  it('follow their parent, and let go of it when disposed', () => {
    const parent = new AbortController();
    const d = startDeadline(10_000, 'job');
    const child = startDeadline(10_000, 'job', parent.signal);
    parent.abort(new Error('shutting down'));
    expect(child.signal.aborted).toBe(true);
    expect(child.signal.reason.message).toBe('shutting down');
    d.dispose();
    child.dispose();
    const other = new AbortController();
    const linked = linkSignals([other.signal]);
    linked.unlink();
    other.abort();
    expect(linked.signal.aborted).toBe(false);
  });

  it('abortable rejects as soon as the signal aborts, with its reason', async () => {
    const d = startDeadline(20, 'slow call');
    const started = Date.now();
    await expect(abortable(new Promise(() => {}), d.signal)).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(500);
    await expect(abortable(Promise.resolve(7), undefined)).resolves.toBe(7);
  });

  it('bindSignal makes a per-job view sharing the adapter underneath', () => {
    const adapter = { signal: undefined as AbortSignal | undefined, cache: new Map<string, number>() };
    const signal = new AbortController().signal;
    const view = bindSignal(adapter, signal);
    expect(view.signal).toBe(signal);
    expect(adapter.signal).toBeUndefined();
    view.cache.set('a', 1);
    expect(adapter.cache.get('a')).toBe(1);
  });
});

describe('a deadline reaches the Kubernetes request', () => {
  let server: http.Server;
  let closed = 0;
  let kc: KubeConfig;
  beforeAll(async () => {
    // An API server that never answers: only the deadline ends the request.
    server = http.createServer((req) => req.on('close', () => (closed += 1)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('client-node cancels the HTTP request when the signal aborts', async () => {
    const d = startDeadline(100, 'read');
    const api = kc.makeApiClient(CoreV1Api);
    const before = closed;
    await expect(api.readNamespace({ name: 'a' }, signalOptions(d.signal))).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(before + 1);
  });

  it('a job-bound KubeCluster fails its calls with the deadline error, within the deadline', async () => {
    const cluster = new KubeCluster('c', kc).withSignal(startDeadline(100, 'job namespace a @c').signal);
    const started = Date.now();
    const error = await cluster.getNamespace('a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).message).toMatch(/get namespaces: deadline exceeded|deadline of 100 ms exceeded/);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
