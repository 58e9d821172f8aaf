import type { Logger } from 'pino';
import { z } from 'zod';
import type { Enqueue, Trigger } from '../../shared/contracts/jobs.js';
import type { PlannedEvent } from './image-pull-secret/plan-image-pull-secret.js';
import type {
  ConfigMapView,
  CredentialsRef,
  CrView,
  FailedNamespace,
  ImagePullSecretStatus,
  InstanceTokenInfo,
  InternalEndpoint,
  IssuedToken,
  NamespaceView,
  SecretView,
  ServiceAccountView,
  StoredToken,
  TencentCredential,
} from './model.js';
import type { DesiredSecret } from './pull-secret/desired-secret.js';
import type { FleetRegistryInput } from './registry-tokens/plan-registry-tokens.js';

// Every port of the core and every bundle of dependencies a job's function takes, in one place. The core
// depends only on these; the real adapters (functions/adapters/) wrap @kubernetes/client-node, BullMQ, Redis
// and tencentcloud-sdk-nodejs, and unit tests use in-memory fakes.

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

export const ActionVerb = z.enum(['created', 'updated', 'patched', 'deleted', 'noop', 'conflict', 'skipped']);
export type ActionVerb = z.infer<typeof ActionVerb>;

export const Action = z.object({
  verb: ActionVerb,
  /** `Secret ns/name`, `ServiceAccount ns/name`, `ImagePullSecret name` (never contents). */
  object: z.string(),
  detail: z.string().optional(),
});
export type Action = z.infer<typeof Action>;

/** One processed job, as the audit stream stores it (functions/adapters/redis-audit.ts) and the CLI reads it. */
export const AuditEntry = z.object({
  time: z.string(),
  cluster: z.string(),
  kind: z.string(),
  key: z.string(),
  namespace: z.string().optional(),
  cr: z.array(z.string()).optional(),
  trigger: z.string(),
  actions: z.array(Action),
  outcome: z.enum(['success', 'retry', 'failed']),
  error: z.string().optional(),
  durationMs: z.number(),
  attempt: z.number(),
  jobId: z.string().optional(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export interface AuditPort {
  record(entry: AuditEntry): Promise<void>;
}

export interface ReconcileResult {
  actions: Action[];
  namespace?: string;
  crs: string[];
  /** Set when the job found nothing to do because its object is gone. */
  skipped?: string;
}

// ---------------------------------------------------------------------------------------------------------
// Namespaces, ServiceAccounts and ImagePullSecret CRs

/**
 * What a CR job may read from the worker's watch-fed view (docs/adr-015-cluster-view.md); absent in the SCF
 * drain and the CLI, which keep no view. Each read answers `undefined` when the view cannot (a watch not open).
 */
export interface CrJobViewPort {
  /** Our Secrets of that name in every namespace, with the namespaces as the view holds them. */
  ourSecretsNamed(
    name: string,
  ): { secrets: SecretView[]; namespaceOf(name: string): NamespaceView | undefined } | undefined;
  /**
   * What a status refresh plans from: every namespace and ServiceAccount, and our Secrets of that name (the
   * view holds no one else's). Undefined also while a write of ours is not seen back yet.
   */
  stateFor?(
    secretName: string,
  ):
    | { namespaces: NamespaceView[]; secretsNamed: SecretView[]; serviceAccounts: ServiceAccountView[] }
    | undefined;
  /** A Secret this job is writing: the view reads it as not known until its watch event arrives. */
  noteWrite?(namespace: string, name: string): void;
}

export interface ReconcileDeps {
  cluster: ClusterPort;
  /** The worker view: a CR job's rotation rewrites (before any cluster-wide list) and status counts. */
  view?: CrJobViewPort | undefined;
  queue: QueuePort;
  failures: FailureStorePort;
  now: () => Date;
  /** Status refreshes are delayed by this much so that a burst of namespace jobs costs one status write. */
  statusDelayMs: number;
  log: Logger;
  /** At most this many stale Secrets a CR job rewrites itself per run (the rest: next run or namespace jobs). */
  directUpdateBudget: number;
  /** ...and stops starting rewrites after this long (the rest: a follow-up run of the CR job). */
  directUpdateMs?: number;
  /** Install-wide: take over the TCR add-on's Secrets (plan-adoption.ts); a CR's annotation wins. */
  adoptAddonSecrets?: boolean;
  /** The queue will not retry this job again: a failure now is recorded for the CR's status. */
  isFinalAttempt: boolean;
  /** What caused the job: a CR job run by the periodic resync passes `resync` on to its fan-out (fresh reads). */
  trigger?: Trigger | undefined;
  /**
   * The job's deadline. The ports given here are already bound to it (their requests carry it); the core
   * also checks it between steps, so that a job out of time starts no further write.
   */
  signal?: AbortSignal | undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Tencent Cloud and API keys (adapters: functions/adapters/tencent-tcr.ts, kube-system-objects.ts)

export interface RegistryCall {
  registryId: string;
  region: string;
  credential: TencentCredential;
}

export interface TcrApi {
  /** One new token. TerminalError for a bad key, registry or region; RetryableError for the rest. */
  createInstanceToken(
    input: RegistryCall & { tokenType: 'temp' | 'longterm'; desc: string },
  ): Promise<IssuedToken>;
  /** Revokes a long-term token; 'gone' when it no longer exists (already revoked). */
  deleteInstanceToken(input: RegistryCall & { tokenId: string }): Promise<'deleted' | 'gone'>;
  /** Every long-term token of the registry (all pages). */
  listInstanceTokens(input: RegistryCall): Promise<InstanceTokenInfo[]>;
  /**
   * The instance's private endpoints. Throws TerminalError for what no retry fixes (bad key, unknown
   * instance or region) and RetryableError for the rest (rate limit, service errors, network).
   */
  describeInternalEndpoints(input: {
    registryId: string;
    region: string;
    credential: TencentCredential;
  }): Promise<InternalEndpoint[]>;
}

/** Reads a Secret's data (decoded from base64); undefined when the Secret does not exist. */
export interface SecretReader {
  readSecretData(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** TKE's kubeconfig of a cluster (DescribeClusterKubeconfig), for fleet clusters given by TKE id. */
export interface TkeApi {
  describeClusterKubeconfig(input: {
    clusterId: string;
    region: string;
    extranet: boolean;
    credential: TencentCredential;
  }): Promise<string>;
}

/** Why a CR's own key source is unusable (a message for its status), or undefined when it resolves. */
export interface CredentialCheckPort {
  check(ref: CredentialsRef | undefined): Promise<string | undefined>;
}

export interface CredentialResolveDeps {
  secrets: SecretReader;
  defaultCredential: TencentCredential | undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Registry tokens

/** One cluster's token Secrets (the functions' Role in tcr-assistant-system). */
export interface TokenStorePort {
  readToken(key: string): Promise<StoredToken | undefined>;
  /** Every token Secret of ours in this cluster. */
  listTokens(): Promise<StoredToken[]>;
  /** Creates it, or replaces ours guarded by `resourceVersion` (a 409 is retryable). */
  writeToken(token: StoredToken): Promise<void>;
  deleteToken(key: string, resourceVersion: string): Promise<'deleted' | 'gone'>;
}

export interface ClusterConnection {
  cluster: Pick<ClusterPort, 'listImagePullSecrets' | 'listSecretsNamed'>;
  tokens: TokenStorePort;
  secrets: SecretReader;
}

/** Last outcome per token key, for the fleet view (messages only: never a token or key). */
export interface TokenReportPort {
  report(key: string, error: string | undefined): Promise<void>;
  /** Rotations asked for (token keys or registry ids): done by the next run, then cleared. */
  rotationRequests(): Promise<string[]>;
  clearRotationRequests(targets: readonly string[]): Promise<void>;
  /**
   * Remembers for `ttlMs` that a run found nothing to do for `fingerprint` (plan-registry-tokens.ts
   * tokenWorkFingerprint), or forgets it (undefined): scheduled ticks skip the run meanwhile.
   */
  noteIdle?(fingerprint: string | undefined, ttlMs: number): Promise<void>;
}

export interface RegistryTokensDeps {
  fleetName: string;
  /** Every cluster of the fleet. */
  clusters: readonly string[];
  /** The fleet file's registries, clusters resolved ("*" expanded). */
  registries: readonly FleetRegistryInput[];
  connect(cluster: string): Promise<ClusterConnection>;
  tcr: TcrApi;
  defaultCredential: TencentCredential | undefined;
  queue: QueuePort;
  reports?: TokenReportPort;
  now: () => Date;
  /** How long a replaced long-term token stays valid after the new one is stored everywhere. */
  revokeGraceMs: number;
  /** Per-cluster read timeout: a cluster that does not answer must not hold up the others. */
  clusterTimeoutMs: number;
  /** Token keys (`<registryId>.<tokenType>`) or registry ids to rotate now (the CLI's `rotate`). */
  force?: ReadonlySet<string>;
  log: Logger;
  /** The job's deadline (the ports are bound to it; checked between registries too). */
  signal?: AbortSignal | undefined;
}

export interface RegistryTokensResult extends ReconcileResult {
  unreachable: Record<string, string>;
  problems: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Private endpoints

/** ConfigMaps of our own namespace (tcr-assistant-system); a Role grants exactly these calls. */
export interface SystemConfigMaps {
  getConfigMap(name: string): Promise<ConfigMapView | undefined>;
  /** 'exists' when a ConfigMap of that name appeared since it was read. */
  createConfigMap(configMap: Omit<ConfigMapView, 'resourceVersion'>): Promise<'created' | 'exists'>;
  /** Guarded by resourceVersion: a concurrent change fails with a retryable 409. */
  replaceConfigMap(configMap: ConfigMapView): Promise<void>;
}

export interface PrivateEndpointsDeps {
  cluster: Pick<ClusterPort, 'clusterId' | 'listImagePullSecrets'>;
  configMaps: SystemConfigMaps;
  secrets: SecretReader;
  tcr: Pick<TcrApi, 'describeInternalEndpoints'>;
  /** The functions' own key (environment), for CRs without credentialsSecretRef. */
  defaultCredential: TencentCredential | undefined;
  log: Logger;
  /** The job's deadline (the ports are bound to it; a lookup cut short must not be published). */
  signal?: AbortSignal | undefined;
}
