import { z } from 'zod';
import { FIELD_MANAGER } from '../shared/contracts/labels.js';
import { entriesFor, type MatchableCr, type MatchableNamespace } from '../shared/contracts/matching.js';

// The admission decision for ServiceAccounts, pure: the request and the view in, the JSON patch out.
// It only ever adds entries (never removes one), and every request is allowed: the webhook can make a
// ServiceAccount complete earlier, never refuse one.

/** admission.k8s.io/v1 AdmissionReview, the parts we read. */
export const AdmissionReview = z.object({
  apiVersion: z.literal('admission.k8s.io/v1', {
    error: 'apiVersion must be admission.k8s.io/v1 (set admissionReviewVersions: ["v1"])',
  }),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    namespace: z.string().optional(),
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
    /** CreateOptions / UpdateOptions as performed (a PATCH arrives as UPDATE with UpdateOptions). */
    options: z.object({ fieldManager: z.string().optional() }).passthrough().nullish(),
  }),
});
export type AdmissionReview = z.infer<typeof AdmissionReview>;
export type AdmissionRequest = AdmissionReview['request'];

const ServiceAccountObject = z.object({
  metadata: z
    .object({
      name: z.string().optional(),
      annotations: z.record(z.string(), z.string()).nullish(),
    })
    .optional(),
  imagePullSecrets: z.array(z.object({ name: z.string().optional() }).passthrough()).nullish(),
});
type ServiceAccountObject = z.infer<typeof ServiceAccountObject>;

export type Outcome =
  /** Entries added. */
  | 'patched'
  /** Wanted entries are all there already. */
  | 'unchanged'
  /** No CR wants this ServiceAccount (namespace or ServiceAccount not selected, or skipped). */
  | 'not-selected'
  /** An update by our own functions (field manager): never fight our own removals. */
  | 'own-write'
  /** The view has not seen the namespace (the job path covers it). */
  | 'namespace-unknown'
  /** The view has not listed everything yet. */
  | 'not-synced'
  /** Not a ServiceAccount, or an object we cannot read. */
  | 'invalid';

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

export interface Decision {
  outcome: Outcome;
  /** Entries added (in this order). */
  added: string[];
  patch: JsonPatchOp[];
}

export interface ViewSnapshot {
  synced: boolean;
  crs: readonly MatchableCr[];
  /** The request's namespace as the view knows it. */
  namespace: MatchableNamespace | undefined;
}

const names = (sa: ServiceAccountObject | undefined) =>
  (sa?.imagePullSecrets ?? []).map((r) => r.name ?? '').filter((n) => n !== '');

const none = (outcome: Outcome): Decision => ({ outcome, added: [], patch: [] });

/**
 * CREATE: add every entry the CRs want that the ServiceAccount lacks (the same rule as the job path).
 * UPDATE (sent only when it drops an entry named like ours, see the configuration's matchConditions): put
 * back what the old object had, a CR still wants and the new one lacks, unless our own functions made the
 * change (they remove entries on purpose).
 */
export function decideServiceAccount(request: AdmissionRequest, view: ViewSnapshot): Decision {
  const { group, kind } = request.kind;
  if (group !== '' || kind !== 'ServiceAccount') return none('invalid');
  const parsed = ServiceAccountObject.safeParse(request.object);
  if (!parsed.success) return none('invalid');
  const sa = parsed.data;
  if (request.operation === 'UPDATE' && request.options?.fieldManager === FIELD_MANAGER)
    return none('own-write');
  if (!view.synced) return none('not-synced');
  const ns = view.namespace;
  if (!ns) return none('namespace-unknown');

  const wanted = entriesFor(view.crs, ns, {
    name: sa.metadata?.name ?? '',
    annotations: sa.metadata?.annotations ?? {},
  });
  if (wanted.length === 0) return none('not-selected');
  const present = new Set(names(sa));
  let missing = wanted.filter((e) => !present.has(e));
  if (request.operation === 'UPDATE') {
    const old = ServiceAccountObject.safeParse(request.oldObject);
    const had = new Set(old.success ? names(old.data) : []);
    missing = missing.filter((e) => had.has(e));
  } else if (request.operation !== 'CREATE') return none('invalid');
  if (missing.length === 0) return none('unchanged');

  const patch: JsonPatchOp[] =
    sa.imagePullSecrets === undefined || sa.imagePullSecrets === null
      ? [{ op: 'add', path: '/imagePullSecrets', value: missing.map((name) => ({ name })) }]
      : missing.map((name) => ({ op: 'add', path: '/imagePullSecrets/-', value: { name } }));
  return { outcome: 'patched', added: missing, patch };
}

/** The AdmissionReview answer: always allowed; a JSON patch when there is something to add. */
export function admissionResponse(uid: string, decision: Decision): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(decision.patch.length > 0
        ? {
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(decision.patch), 'utf8').toString('base64'),
          }
        : {}),
    },
  };
}
