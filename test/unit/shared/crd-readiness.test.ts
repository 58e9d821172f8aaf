import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForCrdEstablished } from '../../../shared/kube/crd.js';

// waitForCrdEstablished against a stand-in API server on loopback (plain HTTP): Established is not the end of
// the wait while the CRD's objects still answer a LIST with 429 "storage is (re)initializing" (their watch
// cache is built after Established, KEP-4568).

const CRD = 'things.example.com';
let listAnswers: number[] = [];
let established = true;
const seen: string[] = [];
let server: http.Server;
let kc: KubeConfig;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD}`)
      return json(200, {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: CRD },
        spec: {
          group: 'example.com',
          scope: 'Cluster',
          names: { plural: 'things', kind: 'Thing' },
          versions: [
            { name: 'v1beta1', served: true, storage: false },
            { name: 'v1', served: true, storage: true },
          ],
        },
        status: { conditions: [{ type: 'Established', status: established ? 'True' : 'False' }] },
      });
    if (req.url?.startsWith('/apis/example.com/v1/things')) {
      const code = listAnswers.shift() ?? 200;
      if (code === 200) return json(200, { apiVersion: 'example.com/v1', kind: 'ThingList', items: [] });
      return json(code, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: 'storage is (re)initializing',
        reason: 'TooManyRequests',
        code,
      });
    }
    json(404, { kind: 'Status', code: 404 });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('waitForCrdEstablished', () => {
  it('waits past Established until a full LIST of the storage version is answered', async () => {
    established = true;
    listAnswers = [429, 429, 503];
    seen.length = 0;
    await waitForCrdEstablished(kc, CRD, 10_000);
    const lists = seen.filter((s) => s.startsWith('GET /apis/example.com/'));
    expect(lists).toHaveLength(4);
    // No limit: the request a cache that is not ready refuses (a limited one is sent to etcd instead).
    expect(lists.every((s) => s === 'GET /apis/example.com/v1/things')).toBe(true);
  });

  it('fails naming the refusal when the storage never answers in time', async () => {
    established = true;
    listAnswers = Array.from({ length: 1000 }, () => 429);
    await expect(waitForCrdEstablished(kc, CRD, 500)).rejects.toThrow(
      /things\.example\.com\/v1: Established, but a LIST was still refused after 500 ms; last: HTTP 429/,
    );
  });

  it('does not list before Established, and names the conditions when it never comes', async () => {
    established = false;
    listAnswers = [];
    seen.length = 0;
    await expect(waitForCrdEstablished(kc, CRD, 300)).rejects.toThrow(/not Established after 300 ms/);
    expect(seen.filter((s) => s.startsWith('GET /apis/example.com/'))).toEqual([]);
  });
});
