import type { PlannedEvent } from '../../functions/core/image-pull-secret/plan-image-pull-secret.js';
import type {
  CrView,
  FailedNamespace,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../../functions/core/model.js';
import type {
  AuditEntry,
  AuditPort,
  ClusterPort,
  CreateResult,
  FailureStorePort,
  QueuePort,
  ReconcileDeps,
} from '../../functions/core/ports.js';
import type { DesiredSecret } from '../../functions/core/pull-secret/desired-secret.js';
import { desiredSecretFor } from '../../functions/core/pull-secret/desired-secret.js';
import type { Enqueue } from '../../shared/contracts/jobs.js';
import { dedupIdOf } from '../../shared/contracts/jobs.js';
import type { LabelSelector } from '../../shared/contracts/label-selector.js';
import {
  CR_NAME_ANNOTATION,
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../shared/contracts/labels.js';
import { API_VERSION, KIND } from '../../shared/contracts/names.js';
import { RetryableError, TerminalError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logging.js';

// An in-memory ClusterPort that behaves like the Kubernetes adapter (functions/adapters/kube/kube-cluster.ts)
// as ports.ts documents it: optimistic concurrency by resourceVersion, preconditions on delete, creates
// refused in missing or terminating namespaces, foreign Secrets reported as conflicts, atomic
// imagePullSecrets lists recomputed from the fresh object on a stale patch. Every call is counted by method.
// Plus in-memory queue, failure store and audit, and builders for the plain views the planners take.

export const CLUSTER_ID = 'test';
export const FIXED_NOW = new Date('2025-01-02T03:04:05.678Z');

/** Methods that send a write request to the API server (the "zero writes when converged" contract). */
export const WRITE_METHODS = [
  'createSecret',
  'replaceSecret',
  'deleteSecret',
  'patchServiceAccountPullSecrets',
  'setFinalizer',
  'writeStatus',
  'emitEvent',
] as const;
export type WriteMethod = (typeof WRITE_METHODS)[number];
type Method = keyof Omit<ClusterPort, 'clusterId'>;

/** A Secret as stored: the view's fields plus the data it holds, ours or not. */
interface StoredSecret {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  type: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
  ourLastWrite?: string | undefined;
  /** Owner references (ours before issue #15; the TCR add-on's): a PUT of ours drops them. */
  owners?: { apiVersion: string; kind: string; name: string }[] | undefined;
}

type Fault = (method: WriteMethod, writeIndex: number) => Error | undefined;

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
const clone = <T>(value: T): T => structuredClone(value);
const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The list with `remove` dropped and `add` appended (others' entries and their order kept, no duplicates). */
function applyEntryChanges(current: string[], add: string[], remove: string[]): string[] {
  const drop = new Set(remove);
  const kept = current.filter((n, i) => !drop.has(n) && current.indexOf(n) === i);
  return [...kept, ...add.filter((n) => !kept.includes(n) && !drop.has(n))];
}
const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

export class FakeCluster implements ClusterPort {
  readonly namespaces = new Map<string, NamespaceView>();
  readonly crs = new Map<string, CrView>();
  readonly secrets = new Map<string, StoredSecret>();
  readonly serviceAccounts = new Map<string, ServiceAccountView>();
  readonly events: { cr: string; event: PlannedEvent }[] = [];
  readonly statusWrites: { cr: string; status: ImagePullSecretStatus }[] = [];
  /** Calls by method, reads and writes, including ones that failed or changed nothing. */
  readonly calls: Partial<Record<Method, number>> = {};
  /** Every write call in order: `method target`. */
  readonly writeLog: string[] = [];
  /** Write requests that changed stored state (a create that met a conflict is a call, not a mutation). */
  mutations = 0;
  /** Stale-resourceVersion patches the adapter would have retried after a re-read. */
  serviceAccountPatchConflicts = 0;
  now: () => Date = () => FIXED_NOW;

  private rv = 1000;
  private uidSeq = 0;
  private writeIndex = 0;
  private faults: Fault[] = [];

  constructor(readonly clusterId: string = CLUSTER_ID) {}

  // ---- seeding and inspection (not part of ClusterPort) ----------------------------------------------

  addNamespace(view: NamespaceView): this {
    this.namespaces.set(view.name, clone(view));
    return this;
  }

  addCr(view: CrView): this {
    this.crs.set(view.name, { ...clone(view), resourceVersion: this.nextRv() });
    return this;
  }

  /** Changes a CR's spec as a user would: generation and resourceVersion move on. */
  editCr(name: string, edit: (cr: CrView) => void): this {
    const cr = this.mustCr(name);
    edit(cr);
    cr.generation += 1;
    cr.resourceVersion = this.nextRv();
    return this;
  }

  /** `kubectl delete`: the CR stays while finalizers remain, else it is gone at once. */
  deleteCr(name: string): this {
    const cr = this.mustCr(name);
    if (cr.finalizers.length === 0) this.crs.delete(name);
    else {
      cr.deleting = true;
      cr.resourceVersion = this.nextRv();
    }
    return this;
  }

  /** Another writer (a person, another controller) changes a ServiceAccount: its resourceVersion moves on. */
  editServiceAccount(namespace: string, name: string, edit: (sa: ServiceAccountView) => void): this {
    const sa = this.serviceAccounts.get(keyOf(namespace, name));
    if (!sa) throw new Error(`no ServiceAccount ${namespace}/${name} in the fake cluster`);
    edit(sa);
    sa.resourceVersion = this.nextRv();
    return this;
  }

  addServiceAccount(view: ServiceAccountView): this {
    this.serviceAccounts.set(keyOf(view.namespace, view.name), {
      ...clone(view),
      resourceVersion: this.nextRv(),
    });
    return this;
  }

  /** Stores a Secret as given (our own from `ourSecretView`, or someone else's from `foreignSecretView`). */
  addSecret(view: SecretView): this {
    const { ours: _ours, dataKeys: _keys, ...stored } = clone(view);
    this.secrets.set(keyOf(view.namespace, view.name), { ...stored, resourceVersion: this.nextRv() });
    return this;
  }

  secret(namespace: string, name: string): SecretView | undefined {
    const s = this.secrets.get(keyOf(namespace, name));
    return s && toView(s);
  }

  pullSecretsOf(namespace: string, name: string): string[] | undefined {
    return this.serviceAccounts.get(keyOf(namespace, name))?.imagePullSecrets.slice();
  }

  callsOf(method: Method): number {
    return this.calls[method] ?? 0;
  }

  writeCalls(): number {
    return WRITE_METHODS.reduce((sum, m) => sum + this.callsOf(m), 0);
  }

  resetCounts(): void {
    for (const key of Object.keys(this.calls)) delete this.calls[key as Method];
    this.mutations = 0;
    this.serviceAccountPatchConflicts = 0;
    this.writeLog.length = 0;
  }

  /** Simulates the process dying after `n` more write calls: that call and every later one throws. */
  crashAfterWrites(n: number): this {
    const limit = this.writeIndex + n;
    this.faults.push((method, index) =>
      index > limit ? new Error(`simulated crash before ${method} (write #${index})`) : undefined,
    );
    return this;
  }

  /** Makes the next `times` calls of `method` throw `error` (before touching state). */
  failOn(method: WriteMethod, error: Error, times = Number.POSITIVE_INFINITY): this {
    let left = times;
    this.faults.push((m) => {
      if (m !== method || left <= 0) return undefined;
      left -= 1;
      return error;
    });
    return this;
  }

  /** Runs `hook` at the start of every write call (before faults): to interleave a concurrent writer. */
  beforeWrite(hook: (method: WriteMethod, writeIndex: number) => void): this {
    this.faults.push((method, index) => {
      hook(method, index);
      return undefined;
    });
    return this;
  }

  clearFaults(): this {
    this.faults = [];
    return this;
  }

  /** Everything a reconcile can change, without server-assigned fields (uid, resourceVersion, times). */
  snapshot() {
    const secrets = [...this.secrets.values()]
      .map((s) => ({
        key: keyOf(s.namespace, s.name),
        type: s.type,
        labels: s.labels,
        annotations: s.annotations,
        data: s.data,
        owners: s.owners ?? [],
      }))
      .sort((a, b) => a.key.localeCompare(b.key));
    const serviceAccounts = [...this.serviceAccounts.values()]
      .map((sa) => ({ key: keyOf(sa.namespace, sa.name), imagePullSecrets: sa.imagePullSecrets }))
      .sort((a, b) => a.key.localeCompare(b.key));
    const crs = [...this.crs.values()]
      .map((cr) => ({ name: cr.name, finalizers: cr.finalizers, deleting: cr.deleting }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return clone({ secrets, serviceAccounts, crs });
  }

  // ---- ClusterPort: reads ------------------------------------------------------------------------------

  async getNamespace(name: string): Promise<NamespaceView | undefined> {
    this.count('getNamespace');
    const ns = this.namespaces.get(name);
    return ns && clone(ns);
  }

  async listNamespaces(): Promise<NamespaceView[]> {
    this.count('listNamespaces');
    return [...this.namespaces.values()].sort((a, b) => a.name.localeCompare(b.name)).map(clone);
  }

  async getImagePullSecret(name: string): Promise<CrView | undefined> {
    this.count('getImagePullSecret');
    const cr = this.crs.get(name);
    return cr && clone(cr);
  }

  async listImagePullSecrets(): Promise<CrView[]> {
    this.count('listImagePullSecrets');
    return [...this.crs.values()].sort((a, b) => a.name.localeCompare(b.name)).map(clone);
  }

  async listOurSecrets(namespace: string): Promise<SecretView[]> {
    this.count('listOurSecrets');
    return this.sortedSecrets()
      .filter((s) => s.namespace === namespace && s.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE)
      .map(toView);
  }

  async listSecretsNamed(name: string): Promise<SecretView[]> {
    this.count('listSecretsNamed');
    return this.sortedSecrets()
      .filter((s) => s.name === name)
      .map(toView);
  }

  async secretNamesPresent(namespace: string, names: readonly string[]): Promise<Set<string>> {
    this.count('secretNamesPresent');
    return new Set(
      this.sortedSecrets()
        .filter((s) => s.namespace === namespace && names.includes(s.name))
        .map((s) => s.name),
    );
  }

  async listServiceAccounts(namespace?: string): Promise<ServiceAccountView[]> {
    this.count('listServiceAccounts');
    return [...this.serviceAccounts.values()]
      .filter((sa) => namespace === undefined || sa.namespace === namespace)
      .sort((a, b) => keyOf(a.namespace, a.name).localeCompare(keyOf(b.namespace, b.name)))
      .map(clone);
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccountView | undefined> {
    this.count('getServiceAccount');
    const sa = this.serviceAccounts.get(keyOf(namespace, name));
    return sa && clone(sa);
  }

  async findSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    this.count('findSecret');
    const s = this.secrets.get(keyOf(namespace, name));
    return s && toView(s);
  }

  // ---- ClusterPort: writes -----------------------------------------------------------------------------

  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    this.write('createSecret', keyOf(secret.namespace, secret.name));
    const ns = this.namespaces.get(secret.namespace);
    if (!ns || ns.terminating) return 'namespace-gone';
    const existing = this.secrets.get(keyOf(secret.namespace, secret.name));
    if (existing) {
      // As the adapter does after a 409 AlreadyExists: ours means a concurrent job of ours made it.
      if (existing.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) return 'exists';
      return 'conflict';
    }
    this.secrets.set(keyOf(secret.namespace, secret.name), {
      ...fromDesired(secret),
      uid: `uid-${++this.uidSeq}`,
      resourceVersion: this.nextRv(),
      ourLastWrite: isoSeconds(this.now()),
    });
    this.mutations += 1;
    return 'created';
  }

  async replaceSecret(secret: DesiredSecret, resourceVersion: string): Promise<void> {
    this.write('replaceSecret', keyOf(secret.namespace, secret.name));
    const key = keyOf(secret.namespace, secret.name);
    const existing = this.secrets.get(key);
    if (!existing) throw new TerminalError(`update secrets: HTTP 404: secrets "${secret.name}" not found`);
    if (existing.resourceVersion !== resourceVersion) {
      throw new RetryableError(
        `update secrets: HTTP 409: Operation cannot be fulfilled on secrets "${secret.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    if (existing.type !== secret.type)
      throw new TerminalError(
        `update secrets: HTTP 422: Secret "${secret.name}" is invalid: type: field is immutable`,
      );
    this.secrets.set(key, {
      ...fromDesired(secret),
      uid: existing.uid,
      resourceVersion: this.nextRv(),
      ourLastWrite: isoSeconds(this.now()),
    });
    this.mutations += 1;
  }

  async deleteSecret(
    namespace: string,
    name: string,
    uid: string,
    resourceVersion: string,
  ): Promise<'deleted' | 'gone'> {
    this.write('deleteSecret', keyOf(namespace, name));
    const key = keyOf(namespace, name);
    const existing = this.secrets.get(key);
    if (!existing) return 'gone';
    if (existing.uid !== uid || existing.resourceVersion !== resourceVersion) {
      throw new RetryableError(
        `delete secrets: HTTP 409: Precondition failed: UID/ResourceVersion in precondition does not match the object`,
      );
    }
    this.secrets.delete(key);
    this.mutations += 1;
    return 'deleted';
  }

  async patchServiceAccountPullSecrets(
    sa: ServiceAccountView,
    add: string[],
    remove: string[],
  ): Promise<'patched' | 'unchanged' | 'gone'> {
    this.write('patchServiceAccountPullSecrets', keyOf(sa.namespace, sa.name));
    // Like the adapter: computed from the view as read; a stale resourceVersion (409) means re-read and
    // recompute from the fresh list, so entries another writer added meanwhile survive.
    let current: ServiceAccountView | undefined = sa;
    for (;;) {
      if (!current) return 'gone';
      const next = applyEntryChanges(current.imagePullSecrets, add, remove);
      if (sameList(next, current.imagePullSecrets)) return 'unchanged';
      const stored = this.serviceAccounts.get(keyOf(sa.namespace, sa.name));
      if (!stored) return 'gone';
      if (stored.resourceVersion !== current.resourceVersion) {
        this.serviceAccountPatchConflicts += 1;
        current = clone(stored);
        continue;
      }
      stored.imagePullSecrets = next;
      stored.resourceVersion = this.nextRv();
      stored.ourLastWrite = isoSeconds(this.now());
      this.mutations += 1;
      return 'patched';
    }
  }

  async setFinalizer(cr: CrView, present: boolean): Promise<'done' | 'gone'> {
    this.write('setFinalizer', `${cr.name} ${present}`);
    const stored = this.crs.get(cr.name);
    if (!stored) return 'gone';
    if (present) {
      if (stored.deleting)
        throw new TerminalError(
          `patch imagepullsecrets: HTTP 422: Forbidden: no new finalizers can be added if the object is being deleted`,
        );
      // The adapter's JSON patch tests the resourceVersion only when it creates the list.
      if (cr.finalizers.length === 0 && stored.resourceVersion !== cr.resourceVersion)
        throw new RetryableError(`finalizer of ImagePullSecret ${cr.name} changed concurrently`);
      stored.finalizers = [...stored.finalizers, FINALIZER];
    } else {
      const index = cr.finalizers.indexOf(FINALIZER);
      if (index < 0) return 'done';
      if (stored.finalizers[index] !== FINALIZER)
        throw new RetryableError(`finalizer of ImagePullSecret ${cr.name} changed concurrently`);
      stored.finalizers = stored.finalizers.filter((_, i) => i !== index);
    }
    stored.resourceVersion = this.nextRv();
    this.mutations += 1;
    // The API server removes an object being deleted once its last finalizer is gone.
    if (stored.deleting && stored.finalizers.length === 0) this.crs.delete(cr.name);
    return 'done';
  }

  async writeStatus(cr: CrView, status: ImagePullSecretStatus): Promise<'done' | 'gone'> {
    this.write('writeStatus', cr.name);
    const stored = this.crs.get(cr.name);
    if (!stored) return 'gone';
    // A merge patch of the status: top-level fields replaced, lists whole.
    stored.status = { ...stored.status, ...clone(status) };
    stored.resourceVersion = this.nextRv();
    this.statusWrites.push({ cr: cr.name, status: clone(status) });
    this.mutations += 1;
    return 'done';
  }

  async emitEvent(cr: CrView, event: PlannedEvent): Promise<void> {
    this.write('emitEvent', `${cr.name} ${event.reason}`);
    this.events.push({ cr: cr.name, event: clone(event) });
    this.mutations += 1;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  private count(method: Method): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  private write(method: WriteMethod, target: string): void {
    this.count(method);
    this.writeLog.push(`${method} ${target}`);
    this.writeIndex += 1;
    for (const fault of this.faults) {
      const error = fault(method, this.writeIndex);
      if (error) throw error;
    }
  }

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private mustCr(name: string): CrView {
    const cr = this.crs.get(name);
    if (!cr) throw new Error(`no CR ${name} in the fake cluster`);
    return cr;
  }

  private sortedSecrets(): StoredSecret[] {
    return [...this.secrets.values()].sort((a, b) =>
      keyOf(a.namespace, a.name).localeCompare(keyOf(b.namespace, b.name)),
    );
  }
}

function fromDesired(secret: DesiredSecret): Omit<StoredSecret, 'uid' | 'resourceVersion'> {
  return {
    namespace: secret.namespace,
    name: secret.name,
    type: secret.type,
    labels: clone(secret.labels),
    // As the API server does with a PUT of the whole object: annotations not in it (ours has none) are gone.
    annotations: {},
    data: clone(secret.data),
    // Nor owner references: we write none (versions before #15 wrote one to the CR).
    owners: [],
  };
}

/** What the adapter makes of a Secret: `ours` from the label, contents only for our own. */
function toView(s: StoredSecret): SecretView {
  const ours = s.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
  return clone({
    namespace: s.namespace,
    name: s.name,
    uid: s.uid,
    resourceVersion: s.resourceVersion,
    type: s.type,
    ours,
    labels: s.labels,
    annotations: s.annotations,
    data: ours ? s.data : {},
    ourLastWrite: s.ourLastWrite,
    dataKeys: Object.keys(s.data).sort(),
    owners: s.owners ?? [],
  });
}

// ---- in-memory queue, failure store and audit --------------------------------------------------------

export class FakeQueue implements QueuePort {
  /** Every enqueue call as made (the chunking of a fan-out is visible here). */
  readonly batches: Enqueue[][] = [];
  /** Jobs not yet taken, deduplicated per key as the BullMQ queue does (a waiting job absorbs an add). */
  readonly pending: Enqueue[] = [];
  async enqueue(items: Enqueue[]): Promise<void> {
    this.batches.push(clone(items));
    for (const item of items) {
      const id = dedupIdOf(item.key);
      if (!this.pending.some((p) => dedupIdOf(p.key) === id)) this.pending.push(clone(item));
    }
  }
  get items(): Enqueue[] {
    return this.batches.flat();
  }
  take(): Enqueue | undefined {
    return this.pending.shift();
  }
  /** `kind name` (or `kind namespace/name`) of every enqueued job, in order. */
  keys(): string[] {
    return this.items.map((i) =>
      'namespace' in i.key ? `${i.key.kind} ${i.key.namespace}/${i.key.name}` : `${i.key.kind} ${i.key.name}`,
    );
  }
}

export class FakeFailureStore implements FailureStorePort {
  readonly byCr = new Map<string, Map<string, FailedNamespace>>();
  async record(cluster: string, cr: string, failure: FailedNamespace): Promise<void> {
    const key = `${cluster}|${cr}`;
    const map = this.byCr.get(key) ?? new Map<string, FailedNamespace>();
    map.set(failure.namespace, clone(failure));
    this.byCr.set(key, map);
  }
  async clear(cluster: string, cr: string, namespace: string): Promise<void> {
    this.byCr.get(`${cluster}|${cr}`)?.delete(namespace);
  }
  async list(cluster: string, cr: string): Promise<FailedNamespace[]> {
    return [...(this.byCr.get(`${cluster}|${cr}`)?.values() ?? [])]
      .map(clone)
      .sort((a, b) => a.namespace.localeCompare(b.namespace));
  }
}

export class FakeAudit implements AuditPort {
  readonly entries: AuditEntry[] = [];
  async record(entry: AuditEntry): Promise<void> {
    this.entries.push(clone(entry));
  }
}

export interface Harness {
  cluster: FakeCluster;
  queue: FakeQueue;
  failures: FakeFailureStore;
  deps: ReconcileDeps;
}

export function harness(cluster = new FakeCluster(), opts: { isFinalAttempt?: boolean } = {}): Harness {
  const queue = new FakeQueue();
  const failures = new FakeFailureStore();
  return {
    cluster,
    queue,
    failures,
    deps: reconcileDeps(cluster, queue, failures, opts.isFinalAttempt ?? false),
  };
}

export function reconcileDeps(
  cluster: ClusterPort,
  queue: QueuePort,
  failures: FailureStorePort,
  isFinalAttempt: boolean,
): ReconcileDeps {
  return {
    cluster,
    queue,
    failures,
    now: () => FIXED_NOW,
    statusDelayMs: 500,
    directUpdateBudget: 500,
    log: createLogger('test', 'silent'),
    isFinalAttempt,
  };
}

// ---- builders of plain views ---------------------------------------------------------------------------

export const dockerCreds = (password = 'tcr.jwt.token') => ({
  server: 'fanjiankong-bj.tencentcloudcr.com',
  username: '100012345678',
  password,
});

export interface CrOptions {
  namespaces?: string;
  serviceAccounts?: string;
  namespaceSelector?: LabelSelector;
  password?: string;
  deleting?: boolean;
  finalizers?: string[];
  invalid?: string;
  generation?: number;
  status?: ImagePullSecretStatus;
  /** A spec.tcr CR whose token has not been issued yet. */
  awaitingCredential?: boolean;
}

export function crView(name: string, o: CrOptions = {}): CrView {
  return {
    credential: o.awaitingCredential || o.invalid ? undefined : dockerCreds(o.password),
    name,
    uid: `uid-cr-${name}`,
    generation: o.generation ?? 1,
    resourceVersion: '1',
    deleting: o.deleting ?? false,
    finalizers: o.finalizers ?? [FINALIZER],
    invalid: o.invalid,
    spec: {
      namespaces: o.namespaces,
      serviceAccounts: o.serviceAccounts,
      namespaceSelector: o.namespaceSelector,
      docker: dockerCreds(o.password),
    },
    status: o.status ?? {},
  };
}

export function nsView(
  name: string,
  o: { labels?: Record<string, string>; annotations?: Record<string, string>; terminating?: boolean } = {},
): NamespaceView {
  return {
    name,
    labels: { 'kubernetes.io/metadata.name': name, ...o.labels },
    annotations: o.annotations ?? {},
    terminating: o.terminating ?? false,
  };
}

export function saView(
  namespace: string,
  name: string,
  imagePullSecrets: string[] = [],
  o: { annotations?: Record<string, string>; resourceVersion?: string; ourLastWrite?: string } = {},
): ServiceAccountView {
  return {
    namespace,
    name,
    resourceVersion: o.resourceVersion ?? `sa-${namespace}-${name}`,
    annotations: o.annotations ?? {},
    imagePullSecrets,
    ourLastWrite: o.ourLastWrite,
  };
}

/**
 * Our Secret for `cr` in `namespace`, exactly as desired (converged) unless `cr` differs from the stored one.
 * `oldShape`: as versions before issue #15 wrote it, with the CR-name annotation and an owner reference to the CR.
 */
export function ourSecretView(
  cr: CrView,
  namespace: string,
  o: { resourceVersion?: string; uid?: string; ourLastWrite?: string; oldShape?: boolean } = {},
): SecretView {
  const d = desiredSecretFor(cr, namespace);
  return {
    namespace,
    name: d.name,
    uid: o.uid ?? `uid-${namespace}-${d.name}`,
    resourceVersion: o.resourceVersion ?? `rv-${namespace}-${d.name}`,
    type: d.type,
    ours: true,
    labels: d.labels,
    annotations: o.oldShape ? { [CR_NAME_ANNOTATION]: cr.name } : {},
    data: d.data,
    ourLastWrite: o.ourLastWrite,
    owners: o.oldShape ? [{ apiVersion: API_VERSION, kind: KIND, name: cr.name }] : [],
  };
}

/** Someone else's Secret (no managed-by label); the adapter never reads its contents. */
/** A Secret as Tencent's TCR add-on makes it for CR `crName`: `tcr.ips<cr>`, dockerconfigjson, no label of ours. */
export function addonSecretView(
  namespace: string,
  crName: string,
  extra: Partial<SecretView> = {},
): SecretView {
  return {
    ...foreignSecretView(namespace, `tcr.ips${crName}`),
    labels: {},
    data: { '.dockerconfigjson': Buffer.from('{"auths":{"old.example.com":{}}}').toString('base64') },
    ...extra,
  };
}

export function foreignSecretView(namespace: string, name: string): SecretView {
  return {
    namespace,
    name,
    uid: `uid-foreign-${namespace}-${name}`,
    resourceVersion: `rv-foreign-${namespace}-${name}`,
    type: 'kubernetes.io/dockerconfigjson',
    ours: false,
    labels: { team: 'theirs' },
    annotations: {},
    data: {},
  };
}
