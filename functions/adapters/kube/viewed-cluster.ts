import type { JobKey } from '../../../shared/contracts/jobs.js';
import { RetryableError } from '../../../shared/errors.js';
import type { PlannedEvent } from '../../core/image-pull-secret/plan-image-pull-secret.js';
import type {
  CrView,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../../core/model.js';
import type { ClusterPort, CreateResult } from '../../core/ports.js';
import type { DesiredSecret } from '../../core/pull-secret/desired-secret.js';

// A namespace or ServiceAccount job's ClusterPort in the worker: the reads a converged namespace costs are
// answered from the watch-fed view (cluster-view.ts) when it can answer them, everything else goes to the
// live adapter. The rules (docs/adr-015-cluster-view.md):
// - a kind whose watch is not open (never listed, or failing) is read live;
// - the object the job is about, when the view does not have it, is read live;
// - a namespace with a write of ours the view has not seen yet is read live (our own write is never
//   mistaken for missing: that would cost a create, a 409 and a re-read);
// - writes stay guarded as before (create → 409 → live re-read; resourceVersion preconditions → 409 →
//   live re-read or a retry of the job), so a stale view costs a request, never a wrong write;
// - a Secret rewrite planned from view CRs is confirmed against a live list of the CRs first (an older CR
//   must never undo a rotation); a Secret deletion or a ServiceAccount entry removal also confirms the
//   namespace live when it came from the view (a pod admitted while an entry is missing never gets it);
//   a CR job's fan-out reads the CRs live;
// - a job's subject that later shows up in the view in a version that changes the plan reruns the job
//   (ClusterView.recheckServed).

export type ViewKind = 'namespace' | 'serviceaccount' | 'imagepullsecret' | 'secret';
/** hit: answered from the view; miss: not in the view, read live; fallback: view not usable, read live. */
export type ViewReadResult = 'hit' | 'miss' | 'fallback';

/** What the view reports (the runtime turns it into prom-client metrics; never object contents). */
export interface ViewObserver {
  read(kind: ViewKind, result: ViewReadResult): void;
  /** A job's subject changed in the view after the job had read an older version of it: run again. */
  rerun(kind: 'namespace' | 'serviceaccount' | 'imagepullsecret'): void;
  /** A rewrite, deletion or entry removal refused: the CRs or namespace it was planned from had changed. */
  behind(): void;
}

/** What the decorator reads of the view (ClusterView). */
export interface ViewReads {
  isLive(kind: ViewKind): boolean;
  namespace(name: string): NamespaceView | undefined;
  crList(): CrView[];
  ourSecrets(namespace: string): SecretView[];
  serviceAccountsIn(namespace: string): ServiceAccountView[];
  serviceAccount(namespace: string, name: string): ServiceAccountView | undefined;
  noteServed(
    served: { kind: 'namespace'; view: NamespaceView } | { kind: 'serviceaccount'; view: ServiceAccountView },
  ): void;
  isDirty(kind: 'secret' | 'serviceaccount', namespace: string, name?: string): boolean;
  markDirty(kind: 'secret' | 'serviceaccount', namespace: string, name: string): void;
  /** Drops the mark when the view holds the object (a write that did not happen: nothing to wait for). */
  settleDirty(kind: 'secret', namespace: string, name: string): void;
}

/** The live adapter (KubeCluster bound to the job's deadline). */
export interface LiveCluster extends ClusterPort {
  /** spec.tcr CRs get the token the refresher stored, read live on every job (a rotation is never undone). */
  withIssuedCredentials(crs: CrView[]): Promise<CrView[]>;
}

/** What a namespace job plans from in a CR: status and finalizers are ours to write and not read. */
export const planInputsOf = (cr: CrView) =>
  JSON.stringify([cr.uid, cr.generation, cr.deleting, cr.adoptAddonSecrets ?? null, cr.invalid ?? null]);

const TCR_ANNOTATION_PREFIX = 'tcr.tencentcloudcr.com/';
const sortedEntries = (r: Record<string, string>, keep: (k: string) => boolean = () => true) =>
  Object.entries(r)
    .filter(([k]) => keep(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** What a plan reads of a namespace: its labels, our annotations (the skip one among them), going away. */
export const namespaceInputsOf = (ns: NamespaceView) =>
  JSON.stringify([
    ns.terminating,
    sortedEntries(ns.labels),
    sortedEntries(ns.annotations, (k) => k.startsWith(TCR_ANNOTATION_PREFIX)),
  ]);

export class ViewedCluster implements ClusterPort {
  /** The CRs as served from the view (name → plan inputs), to confirm before a rewrite or deletion. */
  private servedCrs: Map<string, string> | undefined;
  private crsConfirmed: Promise<void> | undefined;
  /** The namespaces served from the view (name → plan inputs), to confirm before a removal or deletion. */
  private readonly servedNamespaces = new Map<string, string>();
  private namespacesConfirmed: Promise<void> | undefined;

  constructor(
    private readonly view: ViewReads,
    private readonly live: LiveCluster,
    private readonly subject: JobKey,
    private readonly observer: ViewObserver,
    /** Read the CRs live (a CR job's fan-out: it read the CR live just before, the view may not have it yet). */
    private readonly liveCrs = false,
  ) {}

  get clusterId(): string {
    return this.live.clusterId;
  }

  private isSubject(kind: 'namespace' | 'serviceaccount', namespace: string, name: string): boolean {
    const s = this.subject;
    if (kind === 'namespace') return s.kind === 'namespace' && s.name === name;
    return s.kind === 'serviceaccount' && s.namespace === namespace && s.name === name;
  }

  async getNamespace(name: string): Promise<NamespaceView | undefined> {
    if (!this.view.isLive('namespace')) return this.fallback('namespace', () => this.live.getNamespace(name));
    const view = this.view.namespace(name);
    if (!view) {
      this.observer.read('namespace', 'miss');
      return this.live.getNamespace(name);
    }
    this.observer.read('namespace', 'hit');
    this.servedNamespaces.set(name, namespaceInputsOf(view));
    // A ServiceAccount job decides from its namespace too: a later change of it reruns the namespace job,
    // which covers every ServiceAccount in it (the one read from a lagging view among them).
    const s = this.subject;
    if (this.isSubject('namespace', '', name) || (s.kind === 'serviceaccount' && s.namespace === name))
      this.view.noteServed({ kind: 'namespace', view });
    return view;
  }

  async listImagePullSecrets(): Promise<CrView[]> {
    if (this.liveCrs || !this.view.isLive('imagepullsecret'))
      return this.fallback('imagepullsecret', () => this.live.listImagePullSecrets());
    this.observer.read('imagepullsecret', 'hit');
    const crs = this.view.crList();
    this.servedCrs = new Map(crs.map((cr) => [cr.name, planInputsOf(cr)]));
    return this.live.withIssuedCredentials(crs);
  }

  async listOurSecrets(namespace: string): Promise<SecretView[]> {
    if (!this.view.isLive('secret') || this.view.isDirty('secret', namespace))
      return this.fallback('secret', () => this.live.listOurSecrets(namespace));
    this.observer.read('secret', 'hit');
    return this.view.ourSecrets(namespace);
  }

  async listServiceAccounts(namespace?: string): Promise<ServiceAccountView[]> {
    if (namespace === undefined) return this.live.listServiceAccounts();
    if (!this.view.isLive('serviceaccount') || this.view.isDirty('serviceaccount', namespace))
      return this.fallback('serviceaccount', () => this.live.listServiceAccounts(namespace));
    this.observer.read('serviceaccount', 'hit');
    return this.view.serviceAccountsIn(namespace);
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccountView | undefined> {
    if (!this.view.isLive('serviceaccount') || this.view.isDirty('serviceaccount', namespace, name))
      return this.fallback('serviceaccount', () => this.live.getServiceAccount(namespace, name));
    const view = this.view.serviceAccount(namespace, name);
    if (!view) {
      this.observer.read('serviceaccount', 'miss');
      return this.live.getServiceAccount(namespace, name);
    }
    this.observer.read('serviceaccount', 'hit');
    if (this.isSubject('serviceaccount', namespace, name))
      this.view.noteServed({ kind: 'serviceaccount', view });
    return view;
  }

  private fallback<T>(kind: ViewKind, read: () => Promise<T>): Promise<T> {
    this.observer.read(kind, 'fallback');
    return read();
  }

  /**
   * Before a rewrite, a deletion or an entry removal planned from the view's CRs: the live CRs must give the
   * same plan inputs, else the job fails retryably and plans again (by then from the newer CRs). Once per
   * job (concurrent ServiceAccount patches share the one live list).
   */
  private confirmCrs(): Promise<void> {
    if (!this.servedCrs) return Promise.resolve();
    this.crsConfirmed ??= this.checkCrs(this.servedCrs);
    return this.crsConfirmed;
  }

  private async checkCrs(served: Map<string, string>): Promise<void> {
    const fresh = await this.live.listImagePullSecrets();
    const same =
      fresh.length === served.size && fresh.every((cr) => served.get(cr.name) === planInputsOf(cr));
    if (!same) this.refuse('ImagePullSecrets changed after the worker view was read: planning again');
  }

  /**
   * Before a deletion or an entry removal: the CRs as above, and each namespace the plan read from the view
   * (labels, skip annotation, terminating) as it is live now. A removal is the one write a later correction
   * cannot undo for the pods admitted meanwhile.
   */
  private async confirmBeforeRemoval(): Promise<void> {
    this.namespacesConfirmed ??= this.checkNamespaces(new Map(this.servedNamespaces));
    await Promise.all([this.confirmCrs(), this.namespacesConfirmed]);
  }

  private async checkNamespaces(served: Map<string, string>): Promise<void> {
    for (const [name, inputs] of served) {
      const fresh = await this.live.getNamespace(name);
      if (!fresh || namespaceInputsOf(fresh) !== inputs)
        this.refuse(`namespace ${name} changed after the worker view was read: planning again`);
    }
  }

  private refuse(message: string): never {
    this.observer.behind();
    throw new RetryableError(message);
  }

  // --- writes: live, guarded as before; the keys are read live until the view has seen them ----------------

  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    this.view.markDirty('secret', secret.namespace, secret.name);
    const result = await this.live.createSecret(secret);
    // Nothing written (409: another job of ours made it, or someone else's is there): when the view already
    // holds that Secret, no write of ours is on its way to it, and the mark would only hold reads live.
    if (result !== 'created') this.view.settleDirty('secret', secret.namespace, secret.name);
    return result;
  }

  async replaceSecret(secret: DesiredSecret, resourceVersion: string): Promise<void> {
    await this.confirmCrs();
    this.view.markDirty('secret', secret.namespace, secret.name);
    return this.live.replaceSecret(secret, resourceVersion);
  }

  async deleteSecret(
    namespace: string,
    name: string,
    uid: string,
    resourceVersion: string,
  ): Promise<'deleted' | 'gone'> {
    await this.confirmBeforeRemoval();
    this.view.markDirty('secret', namespace, name);
    return this.live.deleteSecret(namespace, name, uid, resourceVersion);
  }

  async patchServiceAccountPullSecrets(
    sa: ServiceAccountView,
    add: string[],
    remove: string[],
  ): Promise<'patched' | 'unchanged' | 'gone'> {
    if (remove.length > 0) await this.confirmBeforeRemoval();
    this.view.markDirty('serviceaccount', sa.namespace, sa.name);
    return this.live.patchServiceAccountPullSecrets(sa, add, remove);
  }

  // --- everything else: live --------------------------------------------------------------------------------

  listNamespaces(): Promise<NamespaceView[]> {
    return this.live.listNamespaces();
  }
  getImagePullSecret(name: string): Promise<CrView | undefined> {
    return this.live.getImagePullSecret(name);
  }
  listSecretsNamed(name: string): Promise<SecretView[]> {
    return this.live.listSecretsNamed(name);
  }
  secretNamesPresent(namespace: string, names: readonly string[]): Promise<Set<string>> {
    return this.live.secretNamesPresent(namespace, names);
  }
  findSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    return this.live.findSecret(namespace, name);
  }
  setFinalizer(cr: CrView, present: boolean): Promise<'done' | 'gone'> {
    return this.live.setFinalizer(cr, present);
  }
  writeStatus(cr: CrView, status: ImagePullSecretStatus): Promise<'done' | 'gone'> {
    return this.live.writeStatus(cr, status);
  }
  emitEvent(cr: CrView, event: PlannedEvent): Promise<void> {
    return this.live.emitEvent(cr, event);
  }
}
