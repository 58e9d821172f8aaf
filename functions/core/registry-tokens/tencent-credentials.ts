import { z } from 'zod';
import { SYSTEM_NAMESPACE } from '../../../shared/contracts/names.js';
import { TerminalError } from '../../../shared/errors.js';
import { describeIssues } from '../../../shared/zod-issues.js';
import type { CredentialsRef, TencentCredential } from '../model.js';
import type { SecretReader } from '../ports.js';

// Where a CR's Tencent Cloud API key comes from (its credentialsSecretRef or the functions' environment).
// The ports it reads through (SecretReader, TcrApi) are in ../ports.ts.

/**
 * TCR refused the API key itself (AuthFailure.*, UnauthorizedOperation.*): another key may work where this one
 * does not, unlike a wrong registry id or region.
 */
export class CredentialRejected extends TerminalError {}

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
    const problems = describeIssues(parsed.error.issues);
    // Names keys only: zod's issues for strings never carry the value.
    throw new TerminalError(`${where} needs the keys SecretId and SecretKey (${problems})`);
  }
  return { credential: { secretId: parsed.data.SecretId, secretKey: parsed.data.SecretKey }, source: where };
}
