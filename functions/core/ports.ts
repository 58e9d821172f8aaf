import type { Enqueue } from '../../shared/contracts/jobs.js';
import type { DesiredSecret } from './desired-secret.js';
import type {
  CrView,
  FailedNamespace,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from './model.js';
import type { PlannedEvent } from './plan-image-pull-secret.js';

// Narrow ports to the outside world. The reconcile functions depend only on these; the real adapters wrap
// @kubernetes/client-node, BullMQ and Redis, and orchestration tests use in-memory fakes.

/** 'exists': one of our own jobs created it concurrently (same CR state, so the same content). */
export type CreateResult = 'created' | 'exists' | 'conflict' | 'namespace-gone';

/** One cluster's API, as the reconcile functions need it (the functions' ClusterRole allows exactly this). */
export interface ClusterPort {
  readonly clusterId: string;
  getNamespace(name: string): Promise<NamespaceView | undefined>;
  listNamespaces(): Promise<NamespaceView[]>;
  getImagePullSecret(name: string): Promise<CrView | undefined>;
  listImagePullSecrets(): Promise<CrView[]>;
  /** Our Secrets in one namespace (label selector): we never list anyone else's. */
  listOurSecrets(namespace: string): Promise<SecretView[]>;
  /** Every Secret named `name` in the cluster (field selector), to spot conflicts and count convergence. */
  listSecretsNamed(name: string): Promise<SecretView[]>;
  /** Which of `names` exist as Secrets in the namespace, anyone's (a field-selected list per name). */
  secretNamesPresent(namespace: string, names: readonly string[]): Promise<Set<string>>;
  listServiceAccounts(namespace?: string): Promise<ServiceAccountView[]>;
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccountView | undefined>;
  /** One Secret by name (list with a field selector: the functions have no `get` on Secrets); its data is
   * kept only if it is ours. For adoption: what stands in the way of a create. */
  findSecret(namespace: string, name: string): Promise<SecretView | undefined>;
  /** 'conflict' when a Secret of that name exists and is not ours. */
  createSecret(secret: DesiredSecret): Promise<CreateResult>;
  /** Guarded by resourceVersion: a concurrent change fails with a retryable 409. */
  replaceSecret(secret: DesiredSecret, resourceVersion: string): Promise<void>;
  /** Guarded by uid + resourceVersion preconditions; 'gone' if it no longer exists. */
  deleteSecret(
    namespace: string,
    name: string,
    uid: string,
    resourceVersion: string,
  ): Promise<'deleted' | 'gone'>;
  /**
   * Appends `add` and drops `remove` from imagePullSecrets, keeping every other entry. The list is atomic
   * (no server-side merge), so the patch carries the resourceVersion it was computed from; on 409 the
   * adapter re-reads and recomputes from the fresh list, so a concurrent writer's entries survive.
   */
  patchServiceAccountPullSecrets(
    sa: ServiceAccountView,
    add: string[],
    remove: string[],
  ): Promise<'patched' | 'unchanged' | 'gone'>;
  /** 'gone' when the CR no longer exists (deleted since it was read): nothing left to do for it. */
  setFinalizer(cr: CrView, present: boolean): Promise<'done' | 'gone'>;
  writeStatus(cr: CrView, status: ImagePullSecretStatus): Promise<'done' | 'gone'>;
  emitEvent(cr: CrView, event: PlannedEvent): Promise<void>;
}

export interface QueuePort {
  enqueue(items: Enqueue[]): Promise<void>;
}

/** Per-CR record of namespaces whose last attempt failed, shown in the CR's status until they recover. */
export interface FailureStorePort {
  record(cluster: string, cr: string, failure: FailedNamespace): Promise<void>;
  clear(cluster: string, cr: string, namespace: string): Promise<void>;
  list(cluster: string, cr: string): Promise<FailedNamespace[]>;
}

export type ActionVerb = 'created' | 'updated' | 'patched' | 'deleted' | 'noop' | 'conflict' | 'skipped';

export interface Action {
  verb: ActionVerb;
  /** `Secret ns/name`, `ServiceAccount ns/name`, `ImagePullSecret name` (never contents). */
  object: string;
  detail?: string;
}

export interface AuditEntry {
  time: string;
  cluster: string;
  kind: string;
  key: string;
  namespace?: string | undefined;
  cr?: string[] | undefined;
  trigger: string;
  actions: Action[];
  outcome: 'success' | 'retry' | 'failed';
  error?: string | undefined;
  durationMs: number;
  attempt: number;
  jobId?: string | undefined;
}

export interface AuditPort {
  record(entry: AuditEntry): Promise<void>;
}
