import { matchesNameRule } from './image-pull-secret.js';
import { type LabelSelector, matchesLabelSelector } from './label-selector.js';
import { SKIP_ANNOTATION } from './labels.js';
import { secretNameFor } from './names.js';

// Which CRs want a namespace and a ServiceAccount: the one rule shared by the functions' planners and the
// admission webhook, so that a ServiceAccount is born with exactly the entries the job path would give it.

/** What matching looks at in a CR (the functions' CrView and the webhook's view both have it). */
export interface MatchableCr {
  name: string;
  /** Being deleted: it wants nothing any more. */
  deleting: boolean;
  /** A spec that fails validation: it wants nothing until fixed. */
  invalid?: string | undefined;
  spec: {
    namespaces?: string | undefined;
    serviceAccounts?: string | undefined;
    namespaceSelector?: LabelSelector | undefined;
  };
}

export interface MatchableNamespace {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Being deleted: the namespace controller removes everything in it; we write nothing there. */
  terminating: boolean;
}

export interface MatchableServiceAccount {
  name: string;
  annotations: Record<string, string>;
}

export const isSkipped = (annotations: Record<string, string>) => annotations[SKIP_ANNOTATION] === 'true';

/** Whether a CR wants its Secret in this namespace: names rule AND selector, not skipped, CR alive and valid. */
export function wantsNamespace(cr: MatchableCr, ns: MatchableNamespace): boolean {
  return (
    !cr.deleting &&
    cr.invalid === undefined &&
    !ns.terminating &&
    !isSkipped(ns.annotations) &&
    matchesNameRule(cr.spec.namespaces, ns.name) &&
    matchesLabelSelector(cr.spec.namespaceSelector, ns.labels)
  );
}

export function wantsServiceAccount(cr: MatchableCr, sa: MatchableServiceAccount): boolean {
  return !isSkipped(sa.annotations) && matchesNameRule(cr.spec.serviceAccounts, sa.name);
}

/** The CRs whose entry (`tcr.ips<cr>`) this ServiceAccount of this namespace should carry, in CR order. */
export function crsForServiceAccount<C extends MatchableCr>(
  crs: readonly C[],
  ns: MatchableNamespace,
  sa: MatchableServiceAccount,
): C[] {
  return crs.filter((cr) => wantsNamespace(cr, ns) && wantsServiceAccount(cr, sa));
}

/** The pull-secret entries a ServiceAccount should carry (the names of those CRs' Secrets). */
export function entriesFor(
  crs: readonly MatchableCr[],
  ns: MatchableNamespace,
  sa: MatchableServiceAccount,
): string[] {
  return crsForServiceAccount(crs, ns, sa).map((cr) => secretNameFor(cr.name));
}

/** A namespace as matching sees it, from the API object (typed or raw JSON). */
export function toMatchableNamespace(ns: {
  metadata?: {
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  status?: { phase?: string };
}): MatchableNamespace {
  return {
    name: ns.metadata?.name ?? '',
    labels: ns.metadata?.labels ?? {},
    annotations: ns.metadata?.annotations ?? {},
    terminating:
      (ns.metadata?.deletionTimestamp !== undefined && ns.metadata?.deletionTimestamp !== null) ||
      ns.status?.phase === 'Terminating',
  };
}
