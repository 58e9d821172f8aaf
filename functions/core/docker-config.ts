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
