import { readFile } from 'node:fs/promises';
import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadYaml,
  PatchStrategy,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

/**
 * Parses a multi-document YAML file into objects (empty documents skipped). Each object goes through
 * client-node's loadYaml so that it becomes its typed model: KubernetesObjectApi serializes known kinds
 * by model attribute names and would silently drop raw keys such as `x-kubernetes-validations`.
 */
export async function readManifests(file: string): Promise<KubernetesObject[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'));
  const objects: KubernetesObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as KubernetesObject | null;
    if (value && typeof value === 'object') objects.push(loadYaml<KubernetesObject>(JSON.stringify(value)));
  }
  return objects;
}

/** Server-side applies objects in order (idempotent: re-applying unchanged manifests writes nothing). */
export async function applyManifests(
  kc: KubeConfig,
  objects: KubernetesObject[],
  fieldManager = 'tcr-assistant-installer',
): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  for (const obj of objects) {
    applied.push(
      await client.patch(obj, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply),
    );
  }
  return applied;
}
