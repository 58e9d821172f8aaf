/** Our own namespace: the relay's Lease, the functions' API keys and token Secrets, the updater-config ConfigMap. */
export const SYSTEM_NAMESPACE = 'tcr-assistant-system';

/** API group, version and names of the ImagePullSecret custom resource (compatible with Tencent's add-on). */
export const GROUP = 'tcr.tencentcloudcr.com';
export const VERSION = 'v1';
export const PLURAL = 'imagepullsecrets';
export const KIND = 'ImagePullSecret';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The add-on's naming rule: the Secret of CR `x` is `tcr.ipsx` in every matching namespace. */
export const SECRET_PREFIX = 'tcr.ips';
export function secretNameFor(crName: string): string {
  return `${SECRET_PREFIX}${crName}`;
}
/** A Secret name is a DNS subdomain (≤ 253 characters), so a CR name may have at most this many. */
export const MAX_CR_NAME_LENGTH = 253 - SECRET_PREFIX.length;
