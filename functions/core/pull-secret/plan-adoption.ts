// Taking over the pull Secrets of Tencent's TCR add-on (migration). A cluster that ran the add-on has, per
// CR and namespace, a `kubernetes.io/dockerconfigjson` Secret `tcr.ips<cr-name>` without our label: by
// default a Conflict that we never touch. With adoption allowed (install-wide ADOPT_ADDON_SECRETS, or the
// CR's adopt-addon-secrets annotation, which wins) a Secret that has exactly the add-on's shape is replaced
// by ours (guarded by the resourceVersion we read), so ServiceAccounts that already list it keep working and
// running pods never notice. Anything else of that name stays a Conflict.
import { MANAGED_BY_LABEL } from '../../../shared/contracts/labels.js';
import { API_VERSION, KIND, secretNameFor } from '../../../shared/contracts/names.js';
import type { CrView, SecretView } from '../model.js';
import { DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE } from './docker-config.js';

/** Whether this CR may adopt: its annotation if set, else the install-wide setting. */
export function mayAdopt(cr: CrView, installWide: boolean): boolean {
  return cr.adoptAddonSecrets ?? installWide;
}

/**
 * Why a Secret that is not ours is not one the add-on made for this CR (undefined: it has the add-on's
 * shape). Pure: only the Secret's metadata, type and data keys are looked at.
 */
export function addonShapeProblem(secret: SecretView, crName: string): string | undefined {
  if (secret.ours) return 'it is already ours';
  if (secret.name !== secretNameFor(crName)) return `its name is not ${secretNameFor(crName)}`;
  if (secret.type !== DOCKER_CONFIG_TYPE) return `its type is ${secret.type}, not ${DOCKER_CONFIG_TYPE}`;
  const keys = secret.dataKeys ?? [];
  if (keys.length !== 1 || keys[0] !== DOCKER_CONFIG_KEY)
    return `its data keys are [${keys.join(', ')}], not [${DOCKER_CONFIG_KEY}]`;
  const manager = secret.labels[MANAGED_BY_LABEL];
  if (manager !== undefined) return `it is managed by ${manager}`;
  const group = API_VERSION.split('/')[0];
  const foreign = (secret.owners ?? []).find(
    (o) => o.kind !== KIND || o.apiVersion.split('/')[0] !== group || o.name !== crName,
  );
  if (foreign) return `it is owned by ${foreign.kind} ${foreign.name}`;
  return undefined;
}

export type AdoptionDecision = { adopt: true } | { adopt: false; reason: string };

/** Whether a namespace job that found `secret` in its way should take it over for `cr`. */
export function planAdoption(cr: CrView, secret: SecretView, installWide: boolean): AdoptionDecision {
  if (!mayAdopt(cr, installWide)) return { adopt: false, reason: 'adoption of add-on Secrets is off' };
  const problem = addonShapeProblem(secret, cr.name);
  return problem ? { adopt: false, reason: `not the TCR add-on's Secret: ${problem}` } : { adopt: true };
}
