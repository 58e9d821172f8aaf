import { z } from 'zod';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../../shared/contracts/labels.js';
import type { RetiredToken, StoredToken, TokenType } from '../model.js';

// Where an issued TCR token lives in each cluster: a Secret of ours in tcr-assistant-system, one per registry
// and token type, never the CR. The token and username are Secret data; everything else (expiry, ids, the
// long-term tokens waiting to be revoked) is plain metadata in annotations, so that it can be shown and
// audited without reading the token.

/** `<registryId>.<tokenType>`: one token per registry and type, shared by every CR that names them. */
export function tokenKeyOf(registryId: string, tokenType: TokenType): string {
  return `${registryId}.${tokenType}`;
}

export function tokenSecretName(key: string): string {
  return `tcr-token.${key}`;
}

export const TOKEN_KEY_LABEL = 'tcr.tencentcloudcr.com/registry-token';
const A = {
  registry: 'tcr.tencentcloudcr.com/registry-id',
  region: 'tcr.tencentcloudcr.com/region',
  tokenType: 'tcr.tencentcloudcr.com/token-type',
  tokenId: 'tcr.tencentcloudcr.com/token-id',
  issued: 'tcr.tencentcloudcr.com/token-issued',
  expires: 'tcr.tencentcloudcr.com/token-expires',
  retired: 'tcr.tencentcloudcr.com/retired-tokens',
  credentials: 'tcr.tencentcloudcr.com/credentials-secret',
} as const;

export interface TokenSecretShape {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Plain text (the adapter encodes base64). */
  stringData: Record<string, string>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function toTokenSecret(token: StoredToken): TokenSecretShape {
  return {
    name: tokenSecretName(token.key),
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TOKEN_KEY_LABEL]: token.key },
    annotations: {
      [A.registry]: token.registryId,
      [A.region]: token.region,
      [A.tokenType]: token.tokenType,
      [A.issued]: iso(token.issuedAt),
      [A.expires]: token.expiresAt === 0 ? 'never' : iso(token.expiresAt),
      ...(token.tokenId ? { [A.tokenId]: token.tokenId } : {}),
      [A.retired]: JSON.stringify(token.retired),
      ...(token.credentialsRef ? { [A.credentials]: JSON.stringify(token.credentialsRef) } : {}),
    },
    stringData: { username: token.username, token: token.token },
  };
}

const CredentialsRef = z.object({ cluster: z.string(), namespace: z.string(), name: z.string() });
const Retired = z.array(z.object({ tokenId: z.string().min(1), retiredAt: z.number() }));
const msOf = (text: string | undefined) => (text === undefined ? Number.NaN : Date.parse(text));

/** Reads one of our token Secrets; undefined when it is not ours or not complete (then it is rewritten). */
export function fromTokenSecret(secret: {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
  resourceVersion: string;
}): StoredToken | undefined {
  const { labels, data } = secret;
  const a: Record<string, string | undefined> = secret.annotations;
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return undefined;
  const key = labels[TOKEN_KEY_LABEL];
  const tokenType = a[A.tokenType];
  const issuedAt = msOf(a[A.issued]);
  const expiresAt = a[A.expires] === 'never' ? 0 : msOf(a[A.expires]);
  let retired: RetiredToken[] = [];
  try {
    retired = Retired.parse(JSON.parse(a[A.retired] ?? '[]'));
  } catch {
    retired = [];
  }
  let credentialsRef: StoredToken['credentialsRef'];
  try {
    const raw = a[A.credentials];
    credentialsRef = raw ? CredentialsRef.parse(JSON.parse(raw)) : undefined;
  } catch {
    credentialsRef = undefined;
  }
  const registryId = a[A.registry];
  const region = a[A.region];
  const { username, token } = data;
  if (
    !key ||
    (tokenType !== 'temp' && tokenType !== 'longterm') ||
    !registryId ||
    !region ||
    !username ||
    !token ||
    Number.isNaN(issuedAt) ||
    Number.isNaN(expiresAt)
  ) {
    return undefined;
  }
  return {
    key,
    registryId,
    region,
    tokenType,
    username,
    token,
    expiresAt,
    issuedAt,
    tokenId: a[A.tokenId],
    retired,
    credentialsRef,
    resourceVersion: secret.resourceVersion,
  };
}
