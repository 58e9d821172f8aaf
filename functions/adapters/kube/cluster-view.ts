import type { Logger } from 'pino';
import type { Enqueue, JobKey } from '../../../shared/contracts/jobs.js';
import { SECRET_PREFIX } from '../../../shared/contracts/names.js';
import {
  type Change,
  type Collection,
  ResourceWatcher,
  type WatchedObject,
  type WatchMetrics,
} from '../../../shared/kube/resource-watcher.js';
import type { CrView, NamespaceView, SecretView, ServiceAccountView } from '../../core/model.js';
import type { ClusterPort, CrJobViewPort } from '../../core/ports.js';
import { secretDataDigest } from '../../core/pull-secret/desired-secret.js';
import {
  type LiveCluster,
  planInputsOf,
  ViewedCluster,
  type ViewKind,
  type ViewObserver,
  type ViewReads,
} from './viewed-cluster.js';
import { toCrView, toNamespaceView, toSecretView, toServiceAccountView } from './views.js';

// The worker's watch-fed view of what namespace and ServiceAccount jobs read: namespaces, ServiceAccounts,
// ImagePullSecret CRs and our own Secrets, each kept as the core's plain view with only the fields the
// planner looks at. Fed by the shared list+watch (ResourceWatcher); read through ViewedCluster, a decorator
// of the live adapter. Why it stays correct when it lags the API server: docs/adr-015-cluster-view.md.

export interface ViewCollections {
  namespace: Collection;
  serviceaccount: Collection;
  imagepullsecret: Collection;
  /** Our Secrets only (label selector). */
  secret: Collection;
}

export interface ClusterViewOptions {
  clusterId: string;
  collections: ViewCollections;
  /** Jobs the view asks for itself (reruns); best effort, deduplicated by the queue. */
  enqueue(items: Enqueue[]): void;
  /** Every later change to one of our Secrets, after the view has applied it (the repair watch). */
  onSecretChange?(change: Change): void;
  log: Logger;
  watchMetrics: WatchMetrics;
  observer: ViewObserver;
  now?: () => number;
  /** How long a key we wrote is read live unless its watch event arrives first. Default 10 s. */
  dirtyMs?: number;
  /** How long a job's subject is watched for a newer version than the one it was served. Default 5 min. */
  servedMs?: number;
  /** A kind whose watch has said nothing (not even a bookmark) for this long is read live. Default 70 s. */
  liveSilenceMs?: number;
  /** List everything again this often (a drift the watch missed heals). Default 30 min. */
  relistEveryMs?: number;
}

const TCR_ANNOTATION_PREFIX = 'tcr.tencentcloudcr.com/';

/** Only our own annotations: the planner reads no other, and kubectl's last-applied copies are large. */
function ourAnnotations(annotations: Record<string, string> | undefined): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {}))
    if (k.startsWith(TCR_ANNOTATION_PREFIX)) kept[k] = v;
  return kept;
}

export function stripNamespace(obj: WatchedObject): NamespaceView {
  const view = toNamespaceView(obj as Parameters<typeof toNamespaceView>[0]);
  return { ...view, annotations: ourAnnotations(view.annotations) };
}

/**
 * Our last-write times (managedFields, to the second) repeat across objects written together: one string each
 * (the status refresh lists the latest; the map is dropped whole when it grows large).
 */
const writeTimes = new Map<string, string>();
function internTime(time: string | undefined): string | undefined {
  if (time === undefined) return undefined;
  const known = writeTimes.get(time);
  if (known !== undefined) return known;
  if (writeTimes.size >= 10_000) writeTimes.clear();
  writeTimes.set(time, time);
  return time;
}

export function stripServiceAccount(obj: WatchedObject): ServiceAccountView {
  const view = toServiceAccountView(obj as Parameters<typeof toServiceAccountView>[0]);
  return {
    ...view,
    annotations: ourAnnotations(view.annotations),
    ourLastWrite: internTime(view.ourLastWrite),
  };
}

/**
 * Our Secret with what the planner compares. Its data is kept as a digest only: the planner needs equality
 * with the desired data, and credentials then never sit in the view (nor does one copy per namespace).
 */
export function stripSecret(obj: WatchedObject): SecretView {
  const { owners: _o, ...view } = toSecretView(obj as Parameters<typeof toSecretView>[0]);
  return {
    ...view,
    ourLastWrite: internTime(view.ourLastWrite),
    data: {},
    dataDigest: secretDataDigest(view.data),
    annotations: ourAnnotations(view.annotations),
  };
}

/** The CR without its status (namespace jobs never read it; status is the largest part of a CR). */
export function stripCr(obj: WatchedObject): CrView {
  return { ...toCrView(obj), status: {} };
}

const sameRecord = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

const sameNamespace = (a: NamespaceView, b: NamespaceView) =>
  a.terminating === b.terminating &&
  sameRecord(a.labels, b.labels) &&
  sameRecord(a.annotations, b.annotations);

/**
 * `after` differs from `before` at most by pull-secret entries of ours added (the echo of our own patch, or
 * of the admission webhook's): nothing a job planned from `before` got wrong.
 */
function sameOrOurEntriesAdded(before: ServiceAccountView, after: ServiceAccountView): boolean {
  if (!sameRecord(before.annotations, after.annotations)) return false;
  const now = new Set(after.imagePullSecrets);
  if (!before.imagePullSecrets.every((e) => now.has(e))) return false;
  const was = new Set(before.imagePullSecrets);
  return after.imagePullSecrets.every((e) => was.has(e) || e.startsWith(SECRET_PREFIX));
}

type Served =
  | { kind: 'namespace'; view: NamespaceView; until: number }
  | { kind: 'serviceaccount'; view: ServiceAccountView; until: number };

/** namespace → name → view. */
class ByNamespace<T> {
  private readonly byNs = new Map<string, Map<string, T>>();
  size = 0;
  get(namespace: string, name: string): T | undefined {
    return this.byNs.get(namespace)?.get(name);
  }
  list(namespace: string): T[] {
    return [...(this.byNs.get(namespace)?.values() ?? [])];
  }
  set(namespace: string, name: string, value: T): void {
    let names = this.byNs.get(namespace);
    if (!names) {
      names = new Map();
      this.byNs.set(namespace, names);
    }
    if (!names.has(name)) this.size++;
    names.set(name, value);
  }
  delete(namespace: string, name: string): void {
    const names = this.byNs.get(namespace);
    if (!names?.delete(name)) return;
    this.size--;
    if (names.size === 0) this.byNs.delete(namespace);
  }
  /** Every one, in every namespace. */
  all(): T[] {
    const found: T[] = [];
    for (const names of this.byNs.values()) for (const item of names.values()) found.push(item);
    return found;
  }
  /** The one named `name` in every namespace. */
  named(name: string): T[] {
    const found: T[] = [];
    for (const names of this.byNs.values()) {
      const item = names.get(name);
      if (item !== undefined) found.push(item);
    }
    return found;
  }
  clear(): void {
    this.byNs.clear();
    this.size = 0;
  }
}

const splitKey = (key: string): [string, string] => {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
};

/**
 * One cluster's view (worker runtime only: the SCF drain and the CLI read live). `over(live, key)` gives a
 * job its ClusterPort: reads from here when they can be, every write and every other read live.
 */
export class ClusterView implements ViewReads, CrJobViewPort {
  private readonly namespaces = new Map<string, NamespaceView>();
  private readonly serviceAccounts = new ByNamespace<ServiceAccountView>();
  private readonly secrets = new ByNamespace<SecretView>();
  private readonly crs = new Map<string, CrView>();
  private readonly watchers = new Map<ViewKind, ResourceWatcher<ViewKind>>();
  /** `kind namespace` → name → until: keys we are writing, read live until their event arrives. */
  private readonly dirty = new Map<string, Map<string, number>>();
  /** `kind key` → the version a job was served of its subject. */
  private readonly served = new Map<string, Served>();
  /** Until when a CR change must rerun its CR job (a job was served the CRs recently). */
  private crsServedUntil = 0;
  /** Kinds whose last list or a later event did not parse: read live until the next complete list. */
  private readonly broken = new Set<ViewKind>();
  private readonly now: () => number;

  constructor(private readonly opts: ClusterViewOptions) {
    this.now = opts.now ?? Date.now;
    for (const kind of ['namespace', 'serviceaccount', 'imagepullsecret', 'secret'] as const) {
      const namespaced = kind === 'serviceaccount' || kind === 'secret';
      this.watchers.set(
        kind,
        new ResourceWatcher<ViewKind>(
          {
            kind,
            ...opts.collections[kind],
            keyOf: (o) =>
              namespaced ? `${o.metadata?.namespace}/${o.metadata?.name}` : (o.metadata?.name ?? ''),
            // Every version is applied (the resourceVersion is what the guarded writes carry).
            fingerprintOf: (o) => o.metadata?.resourceVersion ?? '',
          },
          {
            watchdogSilenceMs: 150_000,
            // A watch stalled without an error is read around long before the watchdog restarts it.
            liveSilenceMs: opts.liveSilenceMs ?? 70_000,
            relistEveryMs: opts.relistEveryMs ?? 30 * 60_000,
            log: opts.log.child({ view: kind, cluster: opts.clusterId }),
            metrics: opts.watchMetrics,
            onChange: (change) => this.changed(change),
            onListed: (objects) => this.listed(kind, objects),
          },
        ),
      );
    }
  }

  get clusterId(): string {
    return this.opts.clusterId;
  }

  start(): void {
    for (const w of this.watchers.values()) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.watchers.values()].map((w) => w.stop()));
  }

  /** Listed once and its watch open: what it holds is the API server's state, a watch event behind at most. */
  isLive(kind: ViewKind): boolean {
    return !this.broken.has(kind) && (this.watchers.get(kind)?.isLive ?? false);
  }

  /** Objects held, by kind (a gauge). */
  sizes(): Record<ViewKind, number> {
    return {
      namespace: this.namespaces.size,
      serviceaccount: this.serviceAccounts.size,
      imagepullsecret: this.crs.size,
      secret: this.secrets.size,
    };
  }

  /** The ClusterPort of one job (`key`: what the job is about) over the live adapter bound to its deadline. */
  over(live: LiveCluster, key: JobKey, opts: { liveCrs?: boolean } = {}): ClusterPort {
    return new ViewedCluster(this, live, key, this.opts.observer, opts.liveCrs ?? false);
  }

  // --- reads for ViewedCluster -----------------------------------------------------------------------------

  namespace(name: string): NamespaceView | undefined {
    return this.namespaces.get(name);
  }

  crList(): CrView[] {
    this.crsServedUntil = this.now() + (this.opts.servedMs ?? 300_000);
    return [...this.crs.values()];
  }

  ourSecrets(namespace: string): SecretView[] {
    return this.secrets.list(namespace);
  }

  /**
   * A CR job's rotation rewrites (CrJobViewPort): our Secrets of that name and the namespaces, when both watches
   * are open. A Secret we are writing and have not seen since is left out (its resourceVersion here is old):
   * the CR job's full plan, read live, has it.
   */
  ourSecretsNamed(
    name: string,
  ): { secrets: SecretView[]; namespaceOf(name: string): NamespaceView | undefined } | undefined {
    if (!this.isLive('secret') || !this.isLive('namespace')) return undefined;
    const secrets = this.secrets.named(name).filter((s) => !this.isDirty('secret', s.namespace, s.name));
    return { secrets, namespaceOf: (ns) => this.namespaces.get(ns) };
  }

  /**
   * A status refresh's state (CrJobViewPort): when the three watches are open and every write of ours has come
   * back through them (else the counts could miss our own last write: the job reads live).
   */
  stateFor(
    secretName: string,
  ):
    | { namespaces: NamespaceView[]; secretsNamed: SecretView[]; serviceAccounts: ServiceAccountView[] }
    | undefined {
    if (!this.isLive('namespace') || !this.isLive('secret') || !this.isLive('serviceaccount'))
      return undefined;
    if (this.anyDirty()) return undefined;
    return {
      namespaces: [...this.namespaces.values()],
      secretsNamed: this.secrets.named(secretName),
      serviceAccounts: this.serviceAccounts.all(),
    };
  }

  /** A CR job's in-place rewrite (CrJobViewPort): like a decorator's write, read live until seen back. */
  noteWrite(namespace: string, name: string): void {
    this.markDirty('secret', namespace, name);
  }

  /** Whether a write of ours has not been seen back yet (expired marks are dropped on the way). */
  private anyDirty(): boolean {
    for (const id of [...this.dirty.keys()]) {
      const space = id.indexOf(' ');
      const kind = id.slice(0, space) as 'secret' | 'serviceaccount';
      if (this.isDirty(kind, id.slice(space + 1))) return true;
    }
    return false;
  }

  serviceAccountsIn(namespace: string): ServiceAccountView[] {
    return this.serviceAccounts.list(namespace);
  }

  serviceAccount(namespace: string, name: string): ServiceAccountView | undefined {
    return this.serviceAccounts.get(namespace, name);
  }

  /** A job decided from this version of its subject: a different one arriving later reruns the job. */
  noteServed(served: Omit<Served, 'until'>): void {
    const key =
      served.kind === 'namespace'
        ? served.view.name
        : `${(served.view as ServiceAccountView).namespace}/${served.view.name}`;
    this.served.set(`${served.kind} ${key}`, {
      ...served,
      until: this.now() + (this.opts.servedMs ?? 300_000),
    } as Served);
    if (this.served.size > 50_000) this.dropExpiredServed();
  }

  /** Whether a key of `kind` in `namespace` (or this one) is being written by us and not yet seen since. */
  isDirty(kind: 'secret' | 'serviceaccount', namespace: string, name?: string): boolean {
    const names = this.dirty.get(`${kind} ${namespace}`);
    if (!names) return false;
    const now = this.now();
    for (const [n, until] of names) if (until <= now) names.delete(n);
    if (names.size === 0) {
      this.dirty.delete(`${kind} ${namespace}`);
      return false;
    }
    return name === undefined || names.has(name);
  }

  markDirty(kind: 'secret' | 'serviceaccount', namespace: string, name: string): void {
    const id = `${kind} ${namespace}`;
    let names = this.dirty.get(id);
    if (!names) {
      names = new Map();
      this.dirty.set(id, names);
    }
    names.set(name, this.now() + (this.opts.dirtyMs ?? 10_000));
  }

  settleDirty(kind: 'secret', namespace: string, name: string): void {
    if (this.secrets.get(namespace, name) !== undefined) this.clearDirty(kind, `${namespace}/${name}`);
  }

  // --- feeding ---------------------------------------------------------------------------------------------

  private clearDirty(kind: 'secret' | 'serviceaccount', key: string): void {
    const [namespace, name] = splitKey(key);
    const names = this.dirty.get(`${kind} ${namespace}`);
    if (!names?.delete(name)) return;
    if (names.size === 0) this.dirty.delete(`${kind} ${namespace}`);
  }

  private dropExpiredServed(): void {
    const now = this.now();
    for (const [k, s] of this.served) if (s.until <= now) this.served.delete(k);
  }

  /** Every object of a kind, after each complete list: the view becomes exactly that. */
  private listed(kind: ViewKind, objects: WatchedObject[]): void {
    try {
      this.fill(kind, objects);
      this.broken.delete(kind);
    } catch (error) {
      // A list that does not parse leaves the kind partly filled: it is read live until a list parses.
      this.broken.add(kind);
      this.opts.log.warn(
        { kind, err: error instanceof Error ? error.message : String(error) },
        'view: bad list (reading this kind live until the next list)',
      );
    }
  }

  private fill(kind: ViewKind, objects: WatchedObject[]): void {
    switch (kind) {
      case 'namespace':
        this.namespaces.clear();
        for (const o of objects) {
          const v = stripNamespace(o);
          this.namespaces.set(v.name, v);
        }
        return;
      case 'serviceaccount':
        this.serviceAccounts.clear();
        for (const o of objects) {
          const v = stripServiceAccount(o);
          this.serviceAccounts.set(v.namespace, v.name, v);
        }
        return;
      case 'secret':
        this.secrets.clear();
        for (const o of objects) {
          const v = stripSecret(o);
          this.secrets.set(v.namespace, v.name, v);
        }
        return;
      case 'imagepullsecret':
        this.crs.clear();
        for (const o of objects) {
          const v = stripCr(o);
          this.crs.set(v.name, v);
        }
        return;
    }
  }

  private changed(change: Change<ViewKind>): void {
    try {
      this.apply(change);
    } catch (error) {
      // An event that does not parse leaves the view wrong for its key: the kind is read live until the next
      // complete list (at most relistEveryMs).
      this.broken.add(change.kind);
      this.opts.log.warn(
        { kind: change.kind, err: error instanceof Error ? error.message : String(error) },
        'view: bad event (reading this kind live until the next list)',
      );
    }
    // After the view has it: a repair job it causes reads at least this version.
    if (change.kind === 'secret') this.opts.onSecretChange?.(change);
  }

  private apply(change: Change<ViewKind>): void {
    const { kind, key, object } = change;
    const deleted = change.type === 'deleted' || object === undefined;
    switch (kind) {
      case 'namespace': {
        if (deleted) {
          this.namespaces.delete(key);
          this.served.delete(`namespace ${key}`);
          return;
        }
        const view = stripNamespace(object);
        this.namespaces.set(key, view);
        this.recheckServed('namespace', key, view);
        return;
      }
      case 'serviceaccount': {
        const [namespace, name] = splitKey(key);
        this.clearDirty('serviceaccount', key);
        if (deleted) {
          this.serviceAccounts.delete(namespace, name);
          this.served.delete(`serviceaccount ${key}`);
          return;
        }
        const view = stripServiceAccount(object);
        this.serviceAccounts.set(namespace, name, view);
        this.recheckServed('serviceaccount', key, view);
        return;
      }
      case 'secret': {
        const [namespace, name] = splitKey(key);
        this.clearDirty('secret', key);
        if (deleted) this.secrets.delete(namespace, name);
        else this.secrets.set(namespace, name, stripSecret(object));
        return;
      }
      case 'imagepullsecret': {
        const before = this.crs.get(key);
        const view = deleted ? undefined : stripCr(object);
        if (view) this.crs.set(key, view);
        else this.crs.delete(key);
        // Namespace jobs may have planned from the older CR (one created, edited or deleted just before the
        // event reached the view): its CR job runs again, after the view has the change, and its fan-out
        // (which reads the CRs live) corrects them.
        const changed = !before || !view || planInputsOf(before) !== planInputsOf(view);
        if (this.crsServedUntil > this.now() && changed) {
          this.rerun({ cluster: this.opts.clusterId, kind: 'imagepullsecret', name: key }, deleted);
        }
        return;
      }
    }
  }

  /**
   * The relay and this view watch the same objects on different connections. A job the relay enqueued may
   * run before the view has the change that caused it (or one merged into it while it waited): the job then
   * decided from an older version. When that version is replaced by one that matters, the job runs again.
   */
  private recheckServed(kind: 'namespace', key: string, fresh: NamespaceView): void;
  private recheckServed(kind: 'serviceaccount', key: string, fresh: ServiceAccountView): void;
  private recheckServed(
    kind: 'namespace' | 'serviceaccount',
    key: string,
    fresh: NamespaceView | ServiceAccountView,
  ): void {
    const id = `${kind} ${key}`;
    const served = this.served.get(id);
    if (!served) return;
    if (served.until <= this.now()) {
      this.served.delete(id);
      return;
    }
    const same =
      served.kind === 'namespace'
        ? sameNamespace(served.view, fresh as NamespaceView)
        : sameOrOurEntriesAdded(served.view, fresh as ServiceAccountView);
    if (same) return;
    this.served.delete(id);
    const cluster = this.opts.clusterId;
    if (kind === 'namespace') this.rerun({ cluster, kind: 'namespace', name: key });
    else {
      const [namespace, name] = splitKey(key);
      this.rerun({ cluster, kind: 'serviceaccount', namespace, name });
    }
  }

  private rerun(
    key: JobKey & { kind: 'namespace' | 'serviceaccount' | 'imagepullsecret' },
    deleted = false,
  ): void {
    this.opts.observer.rerun(key.kind);
    this.opts.enqueue([{ key, trigger: deleted ? 'deleted' : 'modified' }]);
  }
}
