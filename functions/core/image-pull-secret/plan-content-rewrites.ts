import { wantsNamespace } from '../../../shared/contracts/matching.js';
import { secretNameFor } from '../../../shared/contracts/names.js';
import type { CrView, NamespaceView, SecretView } from '../model.js';
import { crUidOfSecret, desiredSecretFor, isSecretConverged } from '../pull-secret/desired-secret.js';

/**
 * A rotation's in-place rewrites, planned from our Secrets alone (the worker view's, before any cluster-wide
 * list): every Secret of this CR (ours, labelled with this very CR's uid) whose stored content is not what the
 * CR wants now, in a namespace that still wants it. Each is guarded by the resourceVersion it was read at, so a Secret
 * that changed meanwhile fails with a 409 and goes to its namespace job; ServiceAccounts and Secrets still to
 * be made are the full plan's (namespace jobs). Pure. `namespaceOf` answers from the same view; a namespace it
 * does not know is left to the full plan.
 */
export function planContentRewrites(
  cr: CrView,
  ourSecrets: readonly SecretView[],
  namespaceOf: (name: string) => NamespaceView | undefined,
): { namespace: string; resourceVersion: string }[] {
  if (cr.credential === undefined || cr.deleting || cr.invalid !== undefined) return [];
  const name = secretNameFor(cr.name);
  const rewrites: { namespace: string; resourceVersion: string }[] = [];
  for (const secret of ourSecrets) {
    // Another incarnation's Secret (same CR name, older uid) is the full plan's: its labels change too.
    if (secret.name !== name || !secret.ours || crUidOfSecret(secret) !== cr.uid) continue;
    const ns = namespaceOf(secret.namespace);
    if (!ns || !wantsNamespace(cr, ns)) continue;
    if (isSecretConverged(secret, desiredSecretFor(cr, secret.namespace))) continue;
    rewrites.push({ namespace: secret.namespace, resourceVersion: secret.resourceVersion });
  }
  return rewrites.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}
