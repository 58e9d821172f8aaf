import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { inject, type TestContext } from 'vitest';
import { type NodeClient, type NodeInfo, nodeClient } from '../../infra/local/node.js';
import { waitFor } from './wait.js';

/**
 * The run's node (test/e2e/global-setup.ts), or undefined when this machine cannot host one. Node tests call
 * `requireNode(ctx)` first: without a node they are reported as skipped, with the reason, never passed.
 */
export function runNode(): NodeClient | undefined {
  const info = inject('nodeInfo');
  return info ? nodeClient(JSON.parse(info) as NodeInfo) : undefined;
}

export function requireNode(ctx: TestContext): NodeClient {
  const node = runNode();
  if (!node) ctx.skip(`no node: ${inject('nodeUnavailable') || 'not started'}`);
  return node as NodeClient;
}

/** The API server as in-pod clients must reach it: its loopback address, never the Service ClusterIP. */
export function apiServerEnv(): { name: string; value: string }[] {
  const url = new URL(inject('apiServer'));
  return [
    { name: 'KUBERNETES_SERVICE_HOST', value: url.hostname },
    { name: 'KUBERNETES_SERVICE_PORT', value: url.port },
  ];
}

export interface PodInput {
  name: string;
  image: string;
  args?: string[];
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  serviceAccountName?: string;
}

/** A hostNetwork pod (the only network here) that names no imagePullSecrets of its own. */
export function podManifest(input: PodInput): V1Pod {
  return {
    metadata: { name: input.name, labels: { app: input.name } },
    spec: {
      hostNetwork: true,
      restartPolicy: input.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 1,
      ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName } : {}),
      containers: [
        {
          name: 'main',
          image: input.image,
          imagePullPolicy: input.pullPolicy ?? 'Always',
          ...(input.args ? { args: input.args } : {}),
          env: apiServerEnv(),
        },
      ],
    },
  };
}

export async function createPod(kc: KubeConfig, namespace: string, input: PodInput): Promise<V1Pod> {
  return kc.makeApiClient(CoreV1Api).createNamespacedPod({ namespace, body: podManifest(input) });
}

/** The pod's first container state as one word: Running, Succeeded, ErrImagePull, ImagePullBackOff, ... */
export function podState(pod: V1Pod): string {
  const status = pod.status?.containerStatuses?.[0];
  const waiting = status?.state?.waiting?.reason;
  if (waiting) return waiting;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return pod.status.phase;
  if (status?.state?.running) return 'Running';
  return pod.status?.phase ?? 'Unknown';
}

/** Waits until the pod's state is one of `states`; returns the pod. */
export async function waitForPodState(
  kc: KubeConfig,
  namespace: string,
  name: string,
  states: string[],
  timeoutMs = 60_000,
): Promise<V1Pod> {
  const core = kc.makeApiClient(CoreV1Api);
  return waitFor(
    `pod ${namespace}/${name} to be ${states.join(' or ')}`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      const state = podState(pod);
      if (!states.includes(state)) throw new Error(`it is ${state}`);
      return pod;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/** The messages of the pod's Events (e.g. the kubelet's `Failed to pull image ...: 401 Unauthorized`). */
export async function podEvents(kc: KubeConfig, namespace: string, name: string): Promise<string[]> {
  const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}`,
  });
  return events.items.map((e) => `${e.reason}: ${e.message}`);
}

export async function podLog(kc: KubeConfig, namespace: string, name: string): Promise<string> {
  return kc.makeApiClient(CoreV1Api).readNamespacedPodLog({ namespace, name });
}
