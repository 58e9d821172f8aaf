import {
  crsForServiceAccount,
  wantsNamespace,
  wantsServiceAccount,
} from '../../../shared/contracts/matching.js';
import { SECRET_PREFIX, secretNameFor } from '../../../shared/contracts/names.js';
import type { CrView, NamespaceView, SecretView, ServiceAccountView } from '../model.js';
import {
  crNameOfSecret,
  type DesiredSecret,
  desiredSecretFor,
  isSecretConverged,
} from '../pull-secret/desired-secret.js';
import { mayAdopt } from '../pull-secret/plan-adoption.js';

export interface NamespaceState {
  /** Undefined when the namespace does not exist (any more). */
  namespace: NamespaceView | undefined;
  crs: CrView[];
  /** Our Secrets in the namespace (managed-by label). */
  ourSecrets: SecretView[];
  /** The ServiceAccounts to converge: all of the namespace, or the one a ServiceAccount job is about. */
  serviceAccounts: ServiceAccountView[];
  /** Install-wide: take over the TCR add-on's Secrets that stand in the way (plan-adoption.ts). */
  adoptAddonSecrets?: boolean;
  /**
   * Which of the dangling candidates (`danglingCandidates`) name a Secret that exists in the namespace (not
   * ours, or the check would not be needed). Absent: not checked, so no entry is taken for dangling.
   */
  presentSecretNames?: ReadonlySet<string>;
}

/**
 * Entries `tcr.ips<x>` whose CR `x` does not exist and whose Secret is not one of ours here: left behind when
 * a CR was deleted after its finalizer had been removed by hand and the Secret was deleted by someone else (or
 * by the garbage collector, for a Secret written before #15 with an owner reference). Whether each names a
 * Secret that exists (someone else's) is checked before one is removed: we only remove an entry that points at
 * nothing.
 */
export function danglingCandidates(state: NamespaceState): string[] {
  const crSecrets = new Set(state.crs.map((cr) => secretNameFor(cr.name)));
  const ours = new Set(state.ourSecrets.map((s) => s.name));
  const found = new Set<string>();
  for (const sa of state.serviceAccounts) {
    for (const entry of sa.imagePullSecrets) {
      if (entry.startsWith(SECRET_PREFIX) && !crSecrets.has(entry) && !ours.has(entry)) found.add(entry);
    }
  }
  return [...found].sort();
}

export type SecretWrite =
  /** `mayAdopt`: if a Secret of that name is in the way, take it over when it has the add-on's shape. */
  | { op: 'create'; cr: string; secret: DesiredSecret; mayAdopt: boolean }
  | { op: 'update'; cr: string; secret: DesiredSecret; resourceVersion: string };

export interface SecretDelete {
  op: 'delete';
  cr: string;
  name: string;
  uid: string;
  resourceVersion: string;
}

export interface ServiceAccountPatch {
  name: string;
  /** The ServiceAccount as read: the patch is computed from, and guarded by, this version. */
  serviceAccount: ServiceAccountView;
  /** Entries to append, each tagged with the CR it serves (dropped if that CR's Secret conflicts). */
  add: { secret: string; cr: string }[];
  remove: string[];
}

export interface NamespacePlan {
  namespace: string;
  /** Why nothing is planned at all. */
  skipped?: 'namespace-not-found' | 'namespace-terminating';
  /** CRs that want this namespace. */
  wantedBy: string[];
  writes: SecretWrite[];
  serviceAccountPatches: ServiceAccountPatch[];
  /** Deleted after the ServiceAccount patches, so that a crash in between never strands an entry we own. */
  deletes: SecretDelete[];
  /** Secrets already converged (zero writes). */
  unchanged: string[];
  /** CRs whose state this plan touches: their status is refreshed afterwards. */
  affectedCrs: string[];
}

/**
 * Plans one namespace against every CR: which Secrets to create, update or delete, and which
 * ServiceAccount entries to add or remove. Pure: same state in, same plan out.
 */
export function planNamespace(name: string, state: NamespaceState): NamespacePlan {
  const plan: NamespacePlan = {
    namespace: name,
    wantedBy: [],
    writes: [],
    serviceAccountPatches: [],
    deletes: [],
    unchanged: [],
    affectedCrs: [],
  };
  const ns = state.namespace;
  if (!ns) return { ...plan, skipped: 'namespace-not-found' };
  if (ns.terminating) return { ...plan, skipped: 'namespace-terminating' };

  // A CR whose token is not issued yet wants the namespace but has nothing to write: its Secrets (if
  // any, from an earlier token) stay as they are until the credential is back.
  const wanting = state.crs.filter((cr) => wantsNamespace(cr, ns) && cr.credential !== undefined);
  const waiting = state.crs.filter((cr) => wantsNamespace(cr, ns) && cr.credential === undefined);
  plan.wantedBy = state.crs.filter((cr) => wantsNamespace(cr, ns)).map((cr) => cr.name);
  const ourByName = new Map(state.ourSecrets.map((s) => [s.name, s]));
  // CRs we know but cannot plan (invalid spec): leave their Secrets exactly as they are.
  // A CR being deleted is cleaned up even so: deletion needs no valid spec.
  const frozen = new Set(
    state.crs.filter((cr) => cr.invalid !== undefined && !cr.deleting).map((cr) => secretNameFor(cr.name)),
  );

  for (const cr of wanting) {
    const desired = desiredSecretFor(cr, ns.name);
    const actual = ourByName.get(desired.name);
    if (!actual)
      plan.writes.push({
        op: 'create',
        cr: cr.name,
        secret: desired,
        mayAdopt: mayAdopt(cr, state.adoptAddonSecrets ?? false),
      });
    else if (!isSecretConverged(actual, desired)) {
      plan.writes.push({
        op: 'update',
        cr: cr.name,
        secret: desired,
        resourceVersion: actual.resourceVersion,
      });
    } else plan.unchanged.push(desired.name);
  }

  const wantedNames = new Set(wanting.map((cr) => secretNameFor(cr.name)));
  for (const secret of state.ourSecrets) {
    if (
      // Only pull Secrets are this planner's: our other Secrets (the token store) are never its to delete.
      !secret.name.startsWith(SECRET_PREFIX) ||
      wantedNames.has(secret.name) ||
      frozen.has(secret.name) ||
      waiting.some((cr) => secretNameFor(cr.name) === secret.name)
    ) {
      continue;
    }
    plan.deletes.push({
      op: 'delete',
      cr: crNameOfSecret(secret),
      name: secret.name,
      uid: secret.uid,
      resourceVersion: secret.resourceVersion,
    });
  }

  const dangling = state.presentSecretNames
    ? danglingCandidates(state).filter((name) => !state.presentSecretNames?.has(name))
    : [];
  const removable = new Set([...plan.deletes.map((d) => d.name), ...dangling]);
  for (const sa of state.serviceAccounts) {
    const present = new Set(sa.imagePullSecrets);
    // The same rule as the admission webhook's: an entry it already gave the ServiceAccount costs no write.
    const add = crsForServiceAccount(wanting, ns, sa)
      .filter((cr) => !present.has(secretNameFor(cr.name)))
      .map((cr) => ({ secret: secretNameFor(cr.name), cr: cr.name }));
    // Only entries that name one of our Secrets are ours to remove: either it is being deleted, or it is
    // one we keep but this ServiceAccount no longer matches (narrowed serviceAccounts, skip annotation).
    const remove = sa.imagePullSecrets.filter((entry) => {
      if (removable.has(entry)) return true;
      const cr = wanting.find((c) => secretNameFor(c.name) === entry);
      return cr !== undefined && ourByName.has(entry) && !wantsServiceAccount(cr, sa);
    });
    if (add.length > 0 || remove.length > 0)
      plan.serviceAccountPatches.push({ name: sa.name, serviceAccount: sa, add, remove });
  }

  const existing = new Set(state.crs.map((cr) => cr.name));
  const affected = new Set<string>([
    ...plan.writes.map((w) => w.cr),
    ...plan.deletes.map((d) => d.cr),
    ...plan.serviceAccountPatches.flatMap((p) => p.add.map((a) => a.cr)),
    ...plan.serviceAccountPatches.flatMap((p) =>
      p.remove.map((r) => crNameOfSecret({ name: r })).filter((cr) => existing.has(cr)),
    ),
  ]);
  plan.affectedCrs = [...affected].sort();
  return plan;
}

/** A plan that writes nothing. */
export function isNoop(plan: NamespacePlan): boolean {
  return plan.writes.length === 0 && plan.deletes.length === 0 && plan.serviceAccountPatches.length === 0;
}
