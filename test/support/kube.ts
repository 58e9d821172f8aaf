import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1Namespace,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { inject } from 'vitest';

/** Admin KubeConfig (system:masters) of the run's control plane. */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc;
}

/**
 * A KubeConfig that authenticates as admin but is authorized as `user` through impersonation, e.g.
 * `serviceAccountUser('tcr-assistant-system', 'tcr-assistant-relay')`: code under test then runs with
 * exactly the RBAC that infra/ grants that ServiceAccount.
 */
export function impersonatingKubeConfig(user: string, base: KubeConfig = adminKubeConfig()): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: base.clusters,
    contexts: base.contexts,
    currentContext: base.currentContext,
    users: base.users.map((u) => ({ ...u, impersonateUser: user })),
  });
  return kc;
}

export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

let counter = 0;
/** A namespace name unique within the run: tests never share namespaces. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid.toString(36)}-${Date.now().toString(36)}-${counter}`.slice(0, 63);
}

export async function createNamespace(
  kc: KubeConfig,
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Promise<V1Namespace> {
  return kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels, annotations } } });
}

export async function createServiceAccount(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<V1ServiceAccount> {
  return kc
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

/** The HTTP status of a failed client-node call (ApiException.code), or undefined for other errors. */
export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The API server's message of a failed call (ApiException.body is a JSON string in client-node 1.x). */
export function messageOf(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      return (JSON.parse(String(error.body)) as { message?: string }).message ?? String(error.body);
    } catch {
      return String(error.body);
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/** Resolves to the error a promise rejects with; fails if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to be refused, but it succeeded');
}
