import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';

/** Creates a cluster-scoped ImagePullSecret CR named `name` with `spec`; returns what the API server stored. */
export async function createImagePullSecret(
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<unknown> {
  return kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ImagePullSecret', metadata: { name }, spec },
  });
}
