/** Marks on objects we create, so that we never overwrite or delete what we did not create. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'tcr-assistant';
/** CR names can be 246 characters (too long for a label value): the uid goes in a label. */
export const CR_UID_LABEL = 'tcr.tencentcloudcr.com/imagepullsecret-uid';
/**
 * The CR's name on pull Secrets written before issue #15. No longer written nor read: the name is the Secret's
 * name after `tcr.ips` (and in the owner reference), and this metadata made each rotation's rewrite cost
 * more (bench/results/shape-no-annotation-2026-11-29.md). An old Secret keeps it until its next rewrite (a PUT of the
 * desired object drops it); it is never a reason to write.
 */
export const CR_NAME_ANNOTATION = 'tcr.tencentcloudcr.com/imagepullsecret';
/** `"true"` on a namespace or ServiceAccount: leave it alone (and remove what we had put there). */
export const SKIP_ANNOTATION = 'tcr.tencentcloudcr.com/skip';
export const FINALIZER = 'tcr.tencentcloudcr.com/cleanup';
/**
 * On a CR: `"true"` lets it take over the Secrets Tencent's TCR add-on made for it (`tcr.ips<name>`,
 * dockerconfigjson, nothing else's), `"false"` forbids it whatever the install-wide ADOPT_ADDON_SECRETS says.
 */
export const ADOPT_ANNOTATION = 'tcr.tencentcloudcr.com/adopt-addon-secrets';
/** The field manager of every write: the API server records which fields are ours, and when. */
export const FIELD_MANAGER = 'tcr-assistant';
/** Our pull Secrets (not our other Secrets, such as the token store in tcr-assistant-system). */
export const OUR_SECRETS_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${CR_UID_LABEL}`;
