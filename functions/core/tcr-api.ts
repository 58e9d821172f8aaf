import { z } from 'zod';
import type { TcrTokenSource } from '../../shared/contracts/image-pull-secret.js';
import { SYSTEM_NAMESPACE } from '../../shared/contracts/names.js';
import { TerminalError } from '../../shared/errors.js';

// Narrow ports to Tencent Cloud's TCR API and to where its API key comes from. The real adapters are
// functions/adapters/tencent-tcr.ts (tencentcloud-sdk-nodejs) and functions/adapters/kube-system-objects.ts
// (the Secret); tests use the emulator or fakes.

/**
 * TCR refused the API key itself (AuthFailure.*, UnauthorizedOperation.*): another key may work where this one
 * does not, unlike a wrong registry id or region.
 */
export class CredentialRejected extends TerminalError {}

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

/**
 * The only namespace a `credentialsSecretRef` may point into. The CR is cluster-scoped, so anyone allowed
 * to create one could otherwise make the functions use an API key stored in any namespace (a confused
 * deputy), and the functions would need cluster-wide `get` on Secrets. Here only those who may write
 * Secrets in our own namespace supply keys, and RBAC stays a Role.
 */
export const CREDENTIALS_NAMESPACE = SYSTEM_NAMESPACE;

/** The Secret's keys, as the Tencent Cloud console names them. */
const CredentialSecretData = z.object({
  SecretId: z.string().trim().min(1, 'is empty'),
  SecretKey: z.string().trim().min(1, 'is empty'),
});

export type CredentialsRef = NonNullable<TcrTokenSource['credentialsSecretRef']>;

export interface ResolvedCredential {
  credential: TencentCredential;
  /** Where the key came from, for messages: `Secret ns/name` or `environment`. Never the key itself. */
  source: string;
}

/**
 * The API key for a CR's spec.tcr: its credentialsSecretRef (a Secret in tcr-assistant-system with keys
 * SecretId and SecretKey), else the functions' environment (TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY).
 * Every failure is a TerminalError that says what to fix.
 */
export async function resolveTencentCredential(
  ref: CredentialsRef | undefined,
  deps: { secrets: SecretReader; defaultCredential: TencentCredential | undefined },
): Promise<ResolvedCredential> {
  if (!ref) {
    if (deps.defaultCredential) return { credential: deps.defaultCredential, source: 'environment' };
    throw new TerminalError(
      'no Tencent Cloud API key: set spec.tcr.credentialsSecretRef, or TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY in the functions’ environment',
    );
  }
  const where = `Secret ${ref.namespace}/${ref.name}`;
  if (ref.namespace !== CREDENTIALS_NAMESPACE) {
    throw new TerminalError(
      `spec.tcr.credentialsSecretRef names ${where}: the Secret must be in namespace ${CREDENTIALS_NAMESPACE} (the functions read API keys only there)`,
    );
  }
  const data = await deps.secrets.readSecretData(ref.namespace, ref.name);
  if (!data) throw new TerminalError(`${where} (spec.tcr.credentialsSecretRef) does not exist`);
  const parsed = CredentialSecretData.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    // Names keys only: zod's issues for strings never carry the value.
    throw new TerminalError(`${where} needs the keys SecretId and SecretKey (${problems})`);
  }
  return { credential: { secretId: parsed.data.SecretId, secretKey: parsed.data.SecretKey }, source: where };
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
