import { createHash } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeconfigSource } from './kube-target.js';

export type { KubeconfigSource } from './kube-target.js';

/** Loads a KubeConfig from a file (optionally a named context) or from the in-cluster ServiceAccount. */
export function loadKubeConfig(source: KubeconfigSource = {}): KubeConfig {
  const kc = new KubeConfig();
  if (source.kubeconfig) {
    kc.loadFromFile(source.kubeconfig);
    if (source.context) {
      if (!kc.getContextObject(source.context)) {
        const known = kc.getContexts().map((c) => c.name);
        throw new Error(
          `kubeconfig ${source.kubeconfig} has no context "${source.context}" (it has: ${known.join(', ') || 'none'})`,
        );
      }
      kc.setCurrentContext(source.context);
    }
  } else {
    kc.loadFromCluster();
  }
  return kc;
}

const SHARED = Symbol.for('tcr-assistant.shared-agent');

/**
 * Makes every API call of this KubeConfig reuse one keep-alive connection pool. @kubernetes/client-node 1.x
 * builds a new https.Agent for every request, so each call pays a full TLS handshake and a new
 * SecureContext (parsing the client key and CA again): in the benchmark that was most of the workers' CPU.
 * The pool is keyed by server and TLS material, so a KubeConfig whose credentials change gets a new one.
 * Idempotent; returns the same KubeConfig.
 */
export function shareConnections(kc: KubeConfig): KubeConfig {
  // createAgent is private in the typings; it is the one place every request's agent comes from (1.4.x).
  const target = kc as unknown as {
    [SHARED]?: true;
    createAgent(cluster: { server?: string } | null, agentOptions: Record<string, unknown>): unknown;
  };
  if (target[SHARED]) return kc;
  if (typeof target.createAgent !== 'function') return kc;
  target[SHARED] = true;
  const original = target.createAgent.bind(kc);
  const pools = new Map<string, unknown>();
  target.createAgent = (cluster, agentOptions) => {
    const o = agentOptions;
    const material = [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername]
      .map((v) => (v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('base64') : String(v)))
      .join('|');
    const id = `${cluster?.server ?? ''}|${createHash('sha256').update(material).digest('hex')}`;
    let agent = pools.get(id);
    if (!agent) {
      agent = original(cluster, { ...agentOptions, keepAlive: true });
      pools.set(id, agent);
    }
    return agent;
  };
  return kc;
}
