import { KubeConfig } from '@kubernetes/client-node';

export interface KubeconfigSource {
  /** Path to a kubeconfig file; when absent, the in-cluster ServiceAccount is used. */
  kubeconfig?: string | undefined;
  /** A context of that kubeconfig (default: its current context). */
  context?: string | undefined;
}

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
