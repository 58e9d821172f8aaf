import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { createImagePullSecret } from '../../infra/local/image-pull-secrets.js';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';

export interface CrObject {
  metadata: { name: string; uid: string; generation: number; finalizers?: string[]; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: {
    secretsDesired?: number;
    secretsSuccess?: number;
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    failedNamespaces?: { namespace: string; reason: string; message: string }[];
    secretUpdateSuccessful?: { namespacedName: string; updatedAt: string }[];
    serviceAccountsModifySuccessful?: { namespacedName: string; updatedAt: string }[];
  };
}

const coords = { group: GROUP, version: VERSION, plural: PLURAL };

export const docker = (password = 'tcr.jwt.token') => ({
  server: 'fanjiankong-bj.tencentcloudcr.com',
  username: '100012345678',
  password,
});

export async function createCr(
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<CrObject> {
  return (await createImagePullSecret(kc, name, spec)) as CrObject;
}

export async function readCr(kc: KubeConfig, name: string): Promise<CrObject> {
  return (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ ...coords, name })) as CrObject;
}

export async function patchCrSpec(
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<CrObject> {
  return (await kc
    .makeApiClient(CustomObjectsApi)
    .patchClusterCustomObject(
      { ...coords, name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as CrObject;
}

export async function deleteCr(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).deleteClusterCustomObject({ ...coords, name });
}
