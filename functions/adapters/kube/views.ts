import type { V1ManagedFieldsEntry, V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { z } from 'zod';
import { ImagePullSecretSpec } from '../../../shared/contracts/image-pull-secret.js';
import {
  ADOPT_ANNOTATION,
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../../shared/contracts/labels.js';
import { toMatchableNamespace } from '../../../shared/contracts/matching.js';
import type { ProtoSecret } from '../../../shared/kube/protobuf.js';
import { describeIssues } from '../../../shared/zod-issues.js';
import type {
  CrView,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../../core/model.js';
import type { DesiredSecret } from '../../core/pull-secret/desired-secret.js';

// API objects → the core's views (functions/core/model.ts) and back: the only place that knows both shapes.

/** The raw CR as the API returns it; the spec is validated separately so a bad one becomes `invalid`. */
const RawImagePullSecret = z.object({
  metadata: z.object({
    name: z.string(),
    uid: z.string(),
    generation: z.number().int().default(0),
    resourceVersion: z.string(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.unknown(),
  status: z.record(z.string(), z.unknown()).optional(),
});

const StatusShape = z
  .object({
    lastSyncedGeneration: z.number().optional(),
    secretsDesired: z.number().optional(),
    secretsSuccess: z.number().optional(),
    observedGeneration: z.number().optional(),
    conditions: z.array(z.any()).optional(),
    secretUpdateSuccessful: z.array(z.any()).optional(),
    serviceAccountsModifySuccessful: z.array(z.any()).optional(),
    failedNamespaces: z.array(z.any()).optional(),
  })
  .passthrough();

const lastWriteBy = (entries: V1ManagedFieldsEntry[] | undefined): string | undefined =>
  (entries ?? [])
    .filter((e) => e.manager === FIELD_MANAGER && e.time)
    .map((e) => new Date(e.time as Date).toISOString().replace(/\.\d{3}Z$/, 'Z'))
    .sort()
    .pop();

export const toNamespaceView = (ns: V1Namespace): NamespaceView => toMatchableNamespace(ns);

export function toServiceAccountView(sa: V1ServiceAccount): ServiceAccountView {
  return {
    namespace: sa.metadata?.namespace ?? '',
    name: sa.metadata?.name ?? '',
    annotations: sa.metadata?.annotations ?? {},
    resourceVersion: sa.metadata?.resourceVersion ?? '',
    imagePullSecrets: (sa.imagePullSecrets ?? []).map((r) => r.name ?? '').filter((n) => n !== ''),
    ourLastWrite: lastWriteBy(sa.metadata?.managedFields),
  };
}

export function toSecretView(s: V1Secret): SecretView {
  const labels = s.metadata?.labels ?? {};
  return {
    namespace: s.metadata?.namespace ?? '',
    name: s.metadata?.name ?? '',
    uid: s.metadata?.uid ?? '',
    resourceVersion: s.metadata?.resourceVersion ?? '',
    type: s.type ?? 'Opaque',
    ours: labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE,
    labels,
    annotations: s.metadata?.annotations ?? {},
    // Only our own Secrets' contents are kept: a foreign Secret of the same name is only a conflict marker.
    data: labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? (s.data ?? {}) : {},
    ourLastWrite: lastWriteBy(s.metadata?.managedFields),
    dataKeys: Object.keys(s.data ?? {}).sort(),
    owners: (s.metadata?.ownerReferences ?? []).map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: o.name,
    })),
  };
}

/** A Secret as we write it: what the protobuf encoding carries (shared/kube/protobuf.ts), and its kind. */
export type SecretBody = ProtoSecret & { apiVersion: 'v1'; kind: 'Secret' };

/**
 * The whole object for a POST or PUT: a PUT replaces the metadata, so neither an annotation nor an owner
 * reference (both written by versions before #15) survives a rewrite. A Secret that carries them stays
 * converged until its next rewrite for another reason (desired-secret.ts, isSecretConverged).
 */
export function toSecretBody(secret: DesiredSecret): SecretBody {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secret.name,
      namespace: secret.namespace,
      labels: secret.labels,
    },
    type: secret.type,
    data: secret.data,
  };
}

/** `"true"` / `"false"`; anything else (or absent): the install-wide setting decides. */
function parseAdoptAnnotation(value: string | undefined): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

/** Parses a CR from the API; a spec that fails validation is kept as `invalid` with the reason. */
export function toCrView(raw: unknown): CrView {
  const cr = RawImagePullSecret.parse(raw);
  const spec = ImagePullSecretSpec.safeParse(cr.spec);
  const status = StatusShape.safeParse(cr.status ?? {});
  const base = {
    name: cr.metadata.name,
    uid: cr.metadata.uid,
    generation: cr.metadata.generation,
    resourceVersion: cr.metadata.resourceVersion,
    deleting: cr.metadata.deletionTimestamp !== undefined,
    finalizers: cr.metadata.finalizers ?? [],
    adoptAddonSecrets: parseAdoptAnnotation(cr.metadata.annotations?.[ADOPT_ANNOTATION]),
    status: (status.success ? status.data : {}) as ImagePullSecretStatus,
  };
  if (spec.success) {
    const { server, username, password } = spec.data.docker;
    // spec.tcr credentials come from the token store (issued by the token refresher), not from the CR.
    const credential = !spec.data.tcr && username && password ? { server, username, password } : undefined;
    return { ...base, spec: spec.data, credential };
  }
  const problems = describeIssues(spec.error.issues, { path: (p) => `spec.${p.map(String).join('.')}` });
  return { ...base, invalid: problems, credential: undefined, spec: { docker: { server: '' } } };
}
