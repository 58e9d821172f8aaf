import { matchesLabelSelector } from '../../shared/label-selector.js';
import { SKIP_ANNOTATION } from '../../shared/labels.js';
import { matchesNameRule } from '../../shared/schemas/image-pull-secret.js';
import type { CrView, NamespaceView, ServiceAccountView } from './model.js';

export const isSkipped = (annotations: Record<string, string>) => annotations[SKIP_ANNOTATION] === 'true';

/** Whether a CR wants its Secret in this namespace: names rule AND selector, not skipped, CR alive and valid. */
export function wantsNamespace(cr: CrView, ns: NamespaceView): boolean {
  return (
    !cr.deleting &&
    cr.invalid === undefined &&
    !ns.terminating &&
    !isSkipped(ns.annotations) &&
    matchesNameRule(cr.spec.namespaces, ns.name) &&
    matchesLabelSelector(cr.spec.namespaceSelector, ns.labels)
  );
}

export function wantsServiceAccount(cr: CrView, sa: ServiceAccountView): boolean {
  return !isSkipped(sa.annotations) && matchesNameRule(cr.spec.serviceAccounts, sa.name);
}
