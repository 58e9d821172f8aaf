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
// - a Secret rewrite or deletion planned from view CRs is confirmed against a live list of the CRs first
//   (an older CR must never undo a rotation); a CR job's fan-out reads the CRs live;
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
  /** A Secret rewrite or deletion refused because the CRs it was planned from had changed. */
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
}

/** The live adapter (KubeCluster bound to the job's deadline). */
export interface LiveCluster extends ClusterPort {
  /** spec.tcr CRs get the token the refresher stored, read live on every job (a rotation is never undone). */
  withIssuedCredentials(crs: CrView[]): Promise<CrView[]>;
}

/** What a namespace job plans from in a CR: status and finalizers are ours to write and not read. */
export const planInputsOf = (cr: CrView) =>
  JSON.stringify([cr.uid, cr.generation, cr.deleting, cr.adoptAddonSecrets ?? null, cr.invalid ?? null]);

export class ViewedCluster implements ClusterPort {
  /** The CRs as served from the view (name → plan inputs), to confirm before a rewrite or deletion. */
  private servedCrs: Map<string, string> | undefined;
  private crsConfirmed = false;

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
    if (this.isSubject('namespace', '', name)) this.view.noteServed({ kind: 'namespace', view });
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
   * Before a rewrite or deletion planned from the view's CRs: the live CRs must give the same plan inputs,
   * else the job fails retryably and plans again (by then from the newer CRs).
   */
  private async confirmCrs(): Promise<void> {
    if (!this.servedCrs || this.crsConfirmed) return;
    const fresh = await this.live.listImagePullSecrets();
    const same =
      fresh.length === this.servedCrs.size &&
      fresh.every((cr) => this.servedCrs?.get(cr.name) === planInputsOf(cr));
    if (!same) {
      this.observer.behind();
      throw new RetryableError('ImagePullSecrets changed after the worker view was read: planning again');
    }
    this.crsConfirmed = true;
  }

  // --- writes: live, guarded as before; the keys are read live until the view has seen them ----------------

  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    this.view.markDirty('secret', secret.namespace, secret.name);
    return this.live.createSecret(secret);
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
    await this.confirmCrs();
    this.view.markDirty('secret', namespace, name);
    return this.live.deleteSecret(namespace, name, uid, resourceVersion);
  }

  async patchServiceAccountPullSecrets(
    sa: ServiceAccountView,
    add: string[],
    remove: string[],
  ): Promise<'patched' | 'unchanged' | 'gone'> {
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
