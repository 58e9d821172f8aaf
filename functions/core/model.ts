import type {
  DockerCredentials,
  PrivateNetwork,
  TcrTokenSource,
} from '../../shared/contracts/image-pull-secret.js';
import type { LabelSelector } from '../../shared/contracts/label-selector.js';
import type { RegistryCredential } from './pull-secret/docker-config.js';

// Plain views of cluster objects: what the planners look at, nothing more. Adapters build them from API
// objects; tests build them by hand.

export interface NamespaceView {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Being deleted: the namespace controller removes everything in it; we write nothing there. */
  terminating: boolean;
}

export interface ServiceAccountView {
  namespace: string;
  name: string;
  resourceVersion: string;
  annotations: Record<string, string>;
  imagePullSecrets: string[];
  /** When our field manager last wrote it (from managedFields), for the status list. */
  ourLastWrite?: string | undefined;
}

export interface SecretView {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  type: string;
  /** Whether it carries our managed-by label: only then may we change or delete it. */
  ours: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
  /**
   * When set, `data` is left empty and this is its digest (secretDataDigest): the worker view keeps no
   * credentials, and the planner only needs equality with the desired data.
   */
  dataDigest?: string | undefined;
  ourLastWrite?: string | undefined;
  /** The keys of `data` (also for Secrets not ours, whose contents we never keep). */
  dataKeys?: string[] | undefined;
  /** Owner references (kind, apiVersion, name): who else claims the Secret. */
  owners?: { apiVersion: string; kind: string; name: string }[] | undefined;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number | undefined;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface NamespacedNameAt {
  namespacedName: string;
  updatedAt: string;
}

export interface FailedNamespace {
  namespace: string;
  reason: string;
  message: string;
  since?: string | undefined;
}

export interface ImagePullSecretStatus {
  /** The generation whose spec was last converged everywhere: a Synced event is emitted once per generation. */
  lastSyncedGeneration?: number;
  secretsDesired?: number;
  secretsSuccess?: number;
  observedGeneration?: number;
  conditions?: Condition[];
  secretUpdateSuccessful?: NamespacedNameAt[];
  serviceAccountsModifySuccessful?: NamespacedNameAt[];
  failedNamespaces?: FailedNamespace[];
}

export interface CrView {
  name: string;
  uid: string;
  generation: number;
  resourceVersion: string;
  deleting: boolean;
  finalizers: string[];
  /** Its adopt-addon-secrets annotation, when set: overrides the install-wide adoption setting. */
  adoptAddonSecrets?: boolean | undefined;
  /** A spec that fails validation (should not pass the API server, but we never trust input). */
  invalid?: string | undefined;
  /**
   * The credential to distribute: spec.docker's username/password, or the token issued for spec.tcr.
   * Undefined while a spec.tcr token has not been issued yet: then nothing is written for this CR.
   */
  credential: RegistryCredential | undefined;
  /**
   * Why this CR's own source of an API key (spec.tcr.credentialsSecretRef, or the functions' environment) is
   * refused: then it gets no credential, and its status and a Warning Event say why. Other CRs naming the same
   * registry are not affected.
   */
  credentialProblem?: string | undefined;
  spec: {
    namespaces?: string | undefined;
    serviceAccounts?: string | undefined;
    namespaceSelector?: LabelSelector | undefined;
    docker: DockerCredentials;
    tcr?: TcrTokenSource | undefined;
    privateNetwork?: PrivateNetwork | undefined;
  };
  status: ImagePullSecretStatus;
}

// ---------------------------------------------------------------------------------------------------------
// What the Tencent Cloud ports and the token store carry

export type CredentialsRef = NonNullable<TcrTokenSource['credentialsSecretRef']>;

/** A Tencent Cloud API key. Never logged, never part of an error message or of anything written. */
export interface TencentCredential {
  secretId: string;
  secretKey: string;
}

/** One VPC link of a TCR instance (DescribeInternalEndpoints' AccessVpcSet), as the API reports it. */
export interface InternalEndpoint {
  vpcId: string;
  subnetId: string;
  /** Unchecked: the planner validates it before it can reach a hosts file. */
  accessIp: string;
  /** `Running` when usable; others seen in the console: Creating, Deleting, Failed. */
  status: string;
}

/** A token CreateInstanceToken issued. `token` is a secret: it goes into Secrets only. */
export interface IssuedToken {
  username: string;
  token: string;
  /** Epoch ms; 0 = does not expire. */
  expiresAt: number;
  /** Long-term tokens only: what DeleteInstanceToken takes. */
  tokenId?: string | undefined;
}

/** A long-term token as DescribeInstanceToken lists it (never the token itself). */
export interface InstanceTokenInfo {
  tokenId: string;
  desc: string;
  enabled: boolean;
  /** Epoch ms, NaN if the API gave none. */
  createdAt: number;
}

export type TokenType = 'temp' | 'longterm';

/** A long-term token replaced by a newer one: revoked once every Secret carries the newer one and the grace period is over. */
export interface RetiredToken {
  tokenId: string;
  /** Epoch ms when it was replaced. */
  retiredAt: number;
}

export interface StoredToken {
  key: string;
  registryId: string;
  region: string;
  tokenType: TokenType;
  username: string;
  /** Secret. */
  token: string;
  /** Epoch ms; 0 = never. */
  expiresAt: number;
  issuedAt: number;
  tokenId?: string | undefined;
  retired: RetiredToken[];
  /** The API key's Secret it is issued with (absent: the functions' environment), to revoke it later. */
  credentialsRef?: { cluster: string; namespace: string; name: string } | undefined;
  /** Of the Secret it was read from (absent for one not yet written). */
  resourceVersion?: string | undefined;
}

/** A ConfigMap as the refresh needs it. */
export interface ConfigMapView {
  name: string;
  resourceVersion: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
}
