import { createHash } from 'node:crypto';
import type { Enqueue } from '../shared/contracts/jobs.js';
import { ADOPT_ANNOTATION } from '../shared/contracts/labels.js';
import { SECRET_PREFIX } from '../shared/contracts/names.js';
import type { ChangeType, WatchedObject } from '../shared/kube/resource-watcher.js';

// Pure mapping from watch events to level-triggered jobs (keys only). What cannot matter is dropped here,
// so that a busy cluster does not flood the queue: the fingerprint of an object is exactly the part of it
// that reconcile looks at.

export type WatchedKind = 'namespace' | 'serviceaccount' | 'imagepullsecret';
export type { ChangeType, WatchedObject };

const digest = (value: unknown) =>
  createHash('sha1').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
// Code-unit order, not localeCompare: any fixed order will do for a fingerprint, and ICU's collation would page
// ~3 MiB of its data into the relay's RSS.
const sorted = (record: Record<string, string> | undefined) =>
  Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The object's key within its kind: `name` or `namespace/name`. */
export function keyOf(kind: WatchedKind, obj: WatchedObject): string {
  const m = obj.metadata ?? {};
  return kind === 'serviceaccount' ? `${m.namespace}/${m.name}` : (m.name ?? '');
}

/**
 * What reconcile depends on: namespaces → labels, annotations, terminating; ServiceAccounts → annotations,
 * labels and imagePullSecrets; CRs → generation (spec), deletion, finalizers and the adopt-addon-secrets
 * annotation, never status (our own
 * status writes must not trigger more jobs).
 */
export function fingerprintOf(kind: WatchedKind, obj: WatchedObject): string {
  const m = obj.metadata ?? {};
  switch (kind) {
    case 'namespace':
      return digest([
        sorted(m.labels),
        sorted(m.annotations),
        m.deletionTimestamp !== undefined || obj.status?.phase === 'Terminating',
      ]);
    case 'serviceaccount': {
      // Our own entries (tcr.ips*) are kept readable after the hash, so that the echo of our own patch
      // (entries only added) can be told apart from someone removing one (see isEchoOfOwnWrite).
      const names = (obj.imagePullSecrets ?? []).map((r) => r.name ?? '');
      const ours = names.filter((n) => n.startsWith(SECRET_PREFIX)).sort();
      const others = names.filter((n) => !n.startsWith(SECRET_PREFIX));
      return `${digest([sorted(m.labels), sorted(m.annotations), others])}|${ours.join(',')}`;
    }
    case 'imagepullsecret':
      // The adoption annotation is read by reconcile too (metadata: no generation bump).
      return digest([
        m.generation,
        m.deletionTimestamp !== undefined,
        m.finalizers ?? [],
        m.annotations?.[ADOPT_ANNOTATION] ?? null,
      ]);
  }
}

/**
 * A ServiceAccount change whose only difference is pull-secret entries of ours being added: the echo of a
 * write the functions just made. Nothing to reconcile (a removal, or any other change, is not an echo).
 */
export function isEchoOfOwnWrite(kind: WatchedKind, before: string, after: string): boolean {
  if (kind !== 'serviceaccount') return false;
  const [hashBefore, oursBefore = ''] = before.split('|');
  const [hashAfter, oursAfter = ''] = after.split('|');
  if (hashBefore !== hashAfter || oursBefore === oursAfter) return false;
  const now = new Set(oursAfter.split(',').filter(Boolean));
  return oursBefore
    .split(',')
    .filter(Boolean)
    .every((n) => now.has(n));
}

export interface MapContext {
  cluster: string;
  /** Names of the CRs the relay knows: a namespace that disappears changes their status counts. */
  crNames: () => string[];
  at: number;
}

/** Jobs for one change of one object (a MODIFIED whose fingerprint did not change never gets here). */
export function jobsFor(
  kind: WatchedKind,
  type: ChangeType,
  key: string,
  ctx: MapContext,
  trigger: Enqueue['trigger'] = type,
): Enqueue[] {
  const { cluster, at } = ctx;
  switch (kind) {
    case 'namespace':
      if (type === 'deleted') {
        return ctx
          .crNames()
          .map((name) => ({ key: { cluster, kind: 'imagepullsecret-status', name }, trigger, at }));
      }
      return [{ key: { cluster, kind: 'namespace', name: key }, trigger, at }];
    case 'serviceaccount': {
      // A deleted ServiceAccount leaves nothing of ours to clean (the Secret serves the others).
      if (type === 'deleted') return [];
      const [namespace = '', name = ''] = key.split('/');
      return [{ key: { cluster, kind: 'serviceaccount', namespace, name }, trigger, at }];
    }
    case 'imagepullsecret':
      return [{ key: { cluster, kind: 'imagepullsecret', name: key }, trigger, at }];
  }
}
