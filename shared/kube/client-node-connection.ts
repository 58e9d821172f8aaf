import type http from 'node:http';
import type https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type KubeConnection, type Prepared } from './kube-client.js';

// The light transport with client-node's credentials: the functions keep client-node for their API calls, and
// their watches still run through the one list/watch path (collections.ts over kube-client.ts), authenticated
// as client-node would (exec plugins included), on the agent its createAgent gives (shareConnections: one
// keep-alive pool).

/**
 * How long one answer of client-node's credentials serves. `applyToHTTPSOptions` resolves the user, reads the
 * CA (and a token file) and rebuilds the agent options on every call: ~40 µs, paid by each of a rotation's
 * thousands of rewrites (bench/rotation-probe.ts profile). Its answer changes only when the credentials do: a
 * projected token is rewritten minutes before it expires, an exec plugin's credential carries its expiry and
 * client-node renews it. A request made with an answer a second old at most is as good; one refused in that
 * second (401) fails its job, which retries.
 */
export const PREPARED_FOR_MS = 1000;

export function clientNodeConnection(
  kc: KubeConfig,
  now: () => number = () => performance.now(),
): KubeConnection {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster');
  const prepare = async (): Promise<Prepared> => {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {}))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v : String(v);
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    return { agent: opts.agent as http.Agent | undefined, headers };
  };
  let last: { at: number; prepared: Promise<Prepared> } | undefined;
  return {
    server: server.replace(/\/$/, ''),
    prepare: () => {
      const at = now();
      if (last && at - last.at < PREPARED_FOR_MS) return last.prepared;
      const current = { at, prepared: prepare() };
      last = current;
      // A failure is not kept: the next request asks again.
      current.prepared.catch(() => {
        if (last === current) last = undefined;
      });
      return current.prepared;
    },
  };
}

/** List and watch through client-node's credentials (see collections.ts). */
export function listWatchOf(kc: KubeConfig): KubeClient {
  return new KubeClient(clientNodeConnection(kc));
}
