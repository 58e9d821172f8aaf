import type http from 'node:http';
import type https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type KubeConnection } from './kube-client.js';

// The light transport with client-node's credentials: the functions keep client-node for their API calls, and
// their watches still run through the one list/watch path (collections.ts over kube-client.ts), authenticated
// as client-node would (exec plugins included), on the agent its createAgent gives (shareConnections: one
// keep-alive pool).

export function clientNodeConnection(kc: KubeConfig): KubeConnection {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster');
  return {
    server: server.replace(/\/$/, ''),
    prepare: async () => {
      const opts: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {}))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v : String(v);
      if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      return { agent: opts.agent as http.Agent | undefined, headers };
    },
  };
}

/** List and watch through client-node's credentials (see collections.ts). */
export function listWatchOf(kc: KubeConfig): KubeClient {
  return new KubeClient(clientNodeConnection(kc));
}
