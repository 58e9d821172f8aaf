import https from 'node:https';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
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
 * namespace controller finishing an earlier file's namespaces, the garbage collector removing the Secrets of
 * an earlier file's CRs, the root CA publisher filling a new namespace) must be done before a "zero writes"
 * window opens.
 *
 * A terminating namespace is waited for first: the namespace controller empties it in passes (a DELETE
 * collection of every resource, Secrets, ServiceAccounts and ConfigMaps included, then again until its pods
 * are gone), seconds apart, so a quiet second between two passes proved nothing (an earlier file's namespaces
 * with pods on the node take the kubelet's grace period to go). One that stays stuck is named and not waited
 * for forever. If the count never holds still, this fails saying so, instead of returning a moving number.
 */
export async function quietWriteCount(
  kc: KubeConfig,
  resources: string[],
  { quietMs = 2000, timeoutMs = 60_000, terminatingTimeoutMs = 180_000 } = {},
): Promise<number> {
  const stuck = await waitForNoTerminatingNamespaces(kc, terminatingTimeoutMs);
  if (stuck.length > 0)
    console.warn(
      `[metrics] ${stuck.length} namespace(s) still terminating after ${terminatingTimeoutMs} ms, measuring anyway: ${stuck.slice(0, 10).join(', ')}`,
    );
  const deadline = Date.now() + timeoutMs;
  let last = await apiserverWriteCount(kc, resources);
  let since = Date.now();
  let moves = 0;
  while (Date.now() - since < quietMs) {
    if (Date.now() >= deadline)
      throw new Error(
        `the API server's writes to ${resources.join(', ')} never held still for ${quietMs} ms within ${timeoutMs} ms (${moves} changes, last count ${last}): someone else is still writing, a zero-writes window cannot open`,
      );
    await new Promise((r) => setTimeout(r, 200));
    const now = await apiserverWriteCount(kc, resources);
    if (now !== last) {
      last = now;
      since = Date.now();
      moves += 1;
    }
  }
  return last;
}

/** Waits until no namespace has a deletionTimestamp; returns the ones still terminating at the timeout. */
async function waitForNoTerminatingNamespaces(kc: KubeConfig, timeoutMs: number): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const terminating = (await core.listNamespace()).items
      .filter((n) => n.metadata?.deletionTimestamp)
      .map((n) => n.metadata?.name ?? '');
    if (terminating.length === 0 || Date.now() >= deadline) return terminating;
    await new Promise((r) => setTimeout(r, 500));
  }
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
