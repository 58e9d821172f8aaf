import { createHash } from 'node:crypto';
import { CR_UID_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../../shared/contracts/labels.js';
import { SECRET_PREFIX, secretNameFor } from '../../../shared/contracts/names.js';
import type { CrView, SecretView } from '../model.js';
import {
  DOCKER_CONFIG_KEY,
  DOCKER_CONFIG_TYPE,
  type RegistryCredential,
  renderDockerConfigJson,
} from './docker-config.js';

export interface DesiredSecret {
  namespace: string;
  name: string;
  type: string;
  labels: Record<string, string>;
  data: Record<string, string>;
}

/**
 * The Secret a CR wants in a namespace: two labels (ours; which incarnation of the CR it serves) and no other
 * metadata. No annotation: the CR's name is the Secret's name after `tcr.ips`. No owner reference: the CR's
 * finalizer cleans up, and a CR gone without it (finalizer removed by hand) is swept by its CR job's
 * namespace jobs, which also remove the ServiceAccount entries a garbage collector would have left behind.
 * Every byte and field of metadata costs each rotation's rewrite (issue #15, ADR-003 Ownership).
 */
export function desiredSecretFor(cr: CrView, namespace: string): DesiredSecret {
  if (!cr.credential) throw new Error(`ImagePullSecret ${cr.name} has no credential yet`);
  return {
    namespace,
    name: secretNameFor(cr.name),
    type: DOCKER_CONFIG_TYPE,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CR_UID_LABEL]: cr.uid },
    data: dataFor(cr.credential),
  };
}

/**
 * A CR's Secret data, rendered once per credential and shared (frozen) by every namespace's desired Secret: a
 * CR job plans the same credential for each of its namespaces, and a rotation of 1,000 Secrets rendered and
 * digested it 1,000 times (~50 µs each, bench/rotation-probe.ts profile). Keyed by the credential object
 * (a CR view's, held by the view or the job anyway) and checked field by field, so a changed credential is
 * never served an old rendering.
 */
const rendered = new WeakMap<RegistryCredential, { of: RegistryCredential; data: Record<string, string> }>();
function dataFor(credential: RegistryCredential): Record<string, string> {
  const hit = rendered.get(credential);
  if (
    hit &&
    hit.of.server === credential.server &&
    hit.of.username === credential.username &&
    hit.of.password === credential.password
  )
    return hit.data;
  const data = Object.freeze({ [DOCKER_CONFIG_KEY]: renderDockerConfigJson(credential) });
  rendered.set(credential, { of: { ...credential }, data });
  return data;
}

/** Digests of the shared (frozen, so unchanging) data objects of dataFor. */
const digests = new WeakMap<object, string>();

const includes = (actual: Record<string, string>, wanted: Record<string, string>) =>
  Object.entries(wanted).every(([k, v]) => actual[k] === v);

/** sha256 of a Secret's whole data (keys sorted): equal exactly when the data is. */
export function secretDataDigest(data: Record<string, string>): string {
  const known = digests.get(data);
  if (known !== undefined) return known;
  const entries = Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const digest = createHash('sha256').update(JSON.stringify(entries)).digest('base64');
  if (Object.isFrozen(data)) digests.set(data, digest);
  return digest;
}

/** The stored data is exactly the desired data: compared by digest when only that is kept (worker view). */
function sameData(actual: SecretView, desired: DesiredSecret): boolean {
  if (actual.dataDigest !== undefined) return actual.dataDigest === secretDataDigest(desired.data);
  return (
    Object.keys(actual.data).length === 1 &&
    actual.data[DOCKER_CONFIG_KEY] === desired.data[DOCKER_CONFIG_KEY]
  );
}

/**
 * Whether a stored Secret already is what we want: then it costs zero writes. Annotations are not compared:
 * we want none, and one already there (the CR-name annotation earlier versions wrote, or anyone's) is no
 * reason to rewrite; a rewrite for another reason drops ours (a PUT of the desired object). Nor are owner
 * references: versions before #15 wrote one to the CR, which stays (and costs no write) until the next rewrite
 * drops it. Which CR incarnation a Secret serves is its CR-uid label, compared with the other labels.
 */
export function isSecretConverged(actual: SecretView, desired: DesiredSecret): boolean {
  return (
    actual.ours &&
    actual.type === desired.type &&
    sameData(actual, desired) &&
    includes(actual.labels, desired.labels)
  );
}

/** The uid of the CR incarnation an (our) Secret serves: its CR-uid label. */
export function crUidOfSecret(secret: Pick<SecretView, 'labels'>): string | undefined {
  return secret.labels[CR_UID_LABEL];
}

/** The CR an (our) Secret belongs to: the name after the `tcr.ips` prefix (secretNameFor's inverse). */
export function crNameOfSecret(secret: Pick<SecretView, 'name'>): string {
  return secret.name.slice(SECRET_PREFIX.length);
}
