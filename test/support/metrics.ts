import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';

/** The API server's Prometheus text (/metrics), read as admin. */
export async function apiserverMetrics(kc: KubeConfig): Promise<string> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    https
      .get(`${inject('apiServer')}/metrics`, opts, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Sum of apiserver_request_total for write verbs on the given resources (any group). */
export async function apiserverWriteCount(kc: KubeConfig, resources: string[]): Promise<number> {
  return sumRequests(await apiserverMetrics(kc), ['POST', 'PUT', 'PATCH', 'DELETE'], resources);
}

/**
 * apiserverWriteCount once it has not moved for `quietMs`: other clients of the shared API server (the
 * namespace controller finishing an earlier file's namespaces, the root CA publisher filling a new one) must
 * be done before a "zero writes" window opens.
 */
export async function quietWriteCount(
  kc: KubeConfig,
  resources: string[],
  { quietMs = 1000, timeoutMs = 20_000 } = {},
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = await apiserverWriteCount(kc, resources);
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await apiserverWriteCount(kc, resources);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

export function sumRequests(text: string, verbs: string[], resources: string[]): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '';
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    if (verbs.includes(verb) && resources.includes(resource)) total += Number(line.split(' ').pop());
  }
  return total;
}
