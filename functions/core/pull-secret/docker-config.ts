/** What goes into a pull Secret: a registry and the credential for it. */
export interface RegistryCredential {
  server: string;
  username: string;
  password: string;
}

export const DOCKER_CONFIG_KEY = '.dockerconfigjson';
export const DOCKER_CONFIG_TYPE = 'kubernetes.io/dockerconfigjson';

/**
 * The `.dockerconfigjson` payload, base64-encoded as Secret data:
 * {"auths":{"<server>":{"username","password","auth": base64("username:password")}}}.
 * Deterministic, so that comparing it with what is stored tells whether a write is needed.
 */
export function renderDockerConfigJson(docker: RegistryCredential): string {
  const auth = Buffer.from(`${docker.username}:${docker.password}`).toString('base64');
  const json = JSON.stringify({
    auths: { [docker.server]: { username: docker.username, password: docker.password, auth } },
  });
  return Buffer.from(json).toString('base64');
}

/**
 * The passwords of a base64 `.dockerconfigjson` (Secret data), one per registry in `auths`; undefined when
 * it is not one (not base64 JSON, or no `auths` object). The inverse of renderDockerConfigJson, for
 * telling which Secrets still carry an old token.
 */
export function readDockerConfigPasswords(base64: string): (string | undefined)[] | undefined {
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  const auths = (config as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  return Object.values(auths as Record<string, { password?: unknown } | null>).map((a) =>
    typeof a?.password === 'string' ? a.password : undefined,
  );
}
