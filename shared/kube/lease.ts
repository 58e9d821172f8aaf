import { z } from 'zod';
import type { KubeClient } from './kube-client.js';

// coordination.k8s.io/v1 Lease as the light transport reads and writes it (leader election).

/** metav1.MicroTime: RFC 3339 with six fractional digits (what the API server's validation expects). */
export class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
  override toJSON(): string {
    return this.toISOString();
  }
}

const Time = z.union([z.string(), z.instanceof(Date)]).nullish();
export const Lease = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z
    .looseObject({
      name: z.string().optional(),
      namespace: z.string().optional(),
      resourceVersion: z.string().optional(),
    })
    .optional(),
  spec: z
    .looseObject({
      holderIdentity: z.string().nullish(),
      leaseDurationSeconds: z.number().nullish(),
      acquireTime: Time,
      renewTime: Time,
      leaseTransitions: z.number().nullish(),
    })
    .optional(),
});
export type Lease = z.infer<typeof Lease>;

const leasesPath = (namespace: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
const withKind = (lease: Lease): Lease => ({ ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' });

/** GET, POST and PUT of one namespace's Leases (errors: KubeApiError, whose `code` is the HTTP status). */
export function leaseRequests(client: KubeClient) {
  return {
    read: (namespace: string, name: string, signal: AbortSignal) =>
      client.get(`${leasesPath(namespace)}/${encodeURIComponent(name)}`, { signal, schema: Lease }),
    create: (namespace: string, body: Lease, signal: AbortSignal) =>
      client.post(leasesPath(namespace), withKind(body), { signal, schema: Lease }),
    replace: (namespace: string, name: string, body: Lease, signal: AbortSignal) =>
      client.put(`${leasesPath(namespace)}/${encodeURIComponent(name)}`, withKind(body), {
        signal,
        schema: Lease,
      }),
  };
}
