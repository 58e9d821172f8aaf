import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository paths of the manifests the local tooling and the tests apply. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CRD_FILE = path.join(REPO_ROOT, 'infra', 'crd', 'imagepullsecrets.yaml');
export const SAMPLE_CR_FILE = path.join(REPO_ROOT, 'infra', 'samples', 'imagepullsecret-sample.yaml');
export const CRD_NAME = 'imagepullsecrets.tcr.tencentcloudcr.com';
export const RBAC_DIR = path.join(REPO_ROOT, 'infra', 'rbac');
export const NAMESPACE_FILE = path.join(RBAC_DIR, 'namespace.yaml');
export const FUNCTIONS_RBAC_FILE = path.join(RBAC_DIR, 'functions.yaml');
/** The functions' Role in tcr-assistant-system (updater-config ConfigMap, API-key Secrets). */
export const FUNCTIONS_SYSTEM_RBAC_FILE = path.join(RBAC_DIR, 'functions-system.yaml');
export const SYSTEM_NAMESPACE = 'tcr-assistant-system';
export const FUNCTIONS_SERVICE_ACCOUNT = 'tcr-assistant-functions';
export const RELAY_RBAC_FILE = path.join(RBAC_DIR, 'relay.yaml');
export const RELAY_SERVICE_ACCOUNT = 'tcr-assistant-relay';
