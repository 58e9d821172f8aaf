import { z } from 'zod';

// The job contract between the relay (producer), the functions (consumers) and the CLI. A job names a
// key, never object contents and never credentials: handlers read the current state themselves.

/** Cluster ids appear in dedup ids and Redis keys: a DNS-label-like token, no ':' (BullMQ ids forbid it). */
export const ClusterId = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a lower-case DNS label (a-z, 0-9, -)');
export type ClusterId = z.infer<typeof ClusterId>;

/** Reserved cluster id of fleet-wide jobs (the fleet file refuses a cluster of this name). */
export const FLEET_JOB_CLUSTER = 'fleet';
export const REGISTRY_TOKENS_KEY = {
  cluster: FLEET_JOB_CLUSTER,
  kind: 'registry-tokens',
  name: 'all',
} as const;

const ObjectName = z
  .string()
  .min(1, 'must not be empty')
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Kubernetes object name (a-z, 0-9, - and .)');

export const JobKey = z.discriminatedUnion('kind', [
  z.object({ cluster: ClusterId, kind: z.literal('namespace'), name: ObjectName }),
  z.object({
    cluster: ClusterId,
    kind: z.literal('serviceaccount'),
    namespace: ObjectName,
    name: ObjectName,
  }),
  z.object({ cluster: ClusterId, kind: z.literal('imagepullsecret'), name: ObjectName }),
  z.object({ cluster: ClusterId, kind: z.literal('imagepullsecret-status'), name: ObjectName }),
  /** The cluster's private-endpoint map (ConfigMap tcr-assistant-system/updater-config): one per cluster. */
  z.object({ cluster: ClusterId, kind: z.literal('private-endpoints'), name: z.literal('updater-config') }),
  /** The fleet's TCR tokens: issue, distribute to every cluster, revoke retired ones. One job for the fleet. */
  z.object({
    cluster: z.literal(FLEET_JOB_CLUSTER),
    kind: z.literal('registry-tokens'),
    name: z.literal('all'),
  }),
]);
export type JobKey = z.infer<typeof JobKey>;

/** What made the job: a watch event, a relist, the periodic resync, a CR fan-out, a person. */
export const Trigger = z.enum([
  'added',
  'modified',
  'deleted',
  'relist',
  'resync',
  'fanout',
  'status',
  'cli',
]);
export type Trigger = z.infer<typeof Trigger>;

export const JobData = z
  .object({
    v: z.literal(1),
    key: JobKey,
    trigger: Trigger,
    /** Epoch ms when the producer saw the cause: for end-to-end latency. */
    at: z.number().int().nonnegative(),
  })
  .strict();
export type JobData = z.infer<typeof JobData>;

/** What a producer asks for: a key and its cause (the payload, JobData, is built from it when enqueued). */
export interface Enqueue {
  key: JobKey;
  trigger: Trigger;
  at?: number;
  /** Delays the job: used to coalesce status updates into one write per window. */
  delayMs?: number;
}

export const QUEUE_NAME = 'reconcile';

/** `cluster|kind|namespace|name`: a stable id per key for BullMQ deduplication (no ':' allowed). */
export function dedupIdOf(key: JobKey): string {
  return [key.cluster, key.kind, 'namespace' in key ? key.namespace : '', key.name].join('|');
}

/** `kind namespace/name @cluster`, for logs and audit. */
export function describeKey(key: JobKey): string {
  const object = 'namespace' in key ? `${key.namespace}/${key.name}` : key.name;
  return `${key.kind} ${object} @${key.cluster}`;
}
