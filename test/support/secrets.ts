import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { statusOf } from './kube.js';

export async function readSecret(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<V1Secret | undefined> {
  try {
    return await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name });
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

/** The decoded `.dockerconfigjson` of a Secret. */
export function dockerConfigOf(secret: V1Secret): {
  auths: Record<string, { username: string; password: string; auth: string }>;
} {
  return JSON.parse(Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'));
}

export async function pullSecretsOf(kc: KubeConfig, namespace: string, name: string): Promise<string[]> {
  const sa = await kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ namespace, name });
  return (sa.imagePullSecrets ?? []).map((r) => r.name ?? '');
}
