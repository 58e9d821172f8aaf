import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository paths of the manifests the local tooling and the tests apply. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CRD_FILE = path.join(REPO_ROOT, 'infra', 'crd', 'imagepullsecrets.yaml');
export const SAMPLE_CR_FILE = path.join(REPO_ROOT, 'infra', 'samples', 'imagepullsecret-sample.yaml');
export const CRD_NAME = 'imagepullsecrets.tcr.tencentcloudcr.com';
