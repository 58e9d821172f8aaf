import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export interface KubeconfigInput {
  server: string;
  caCertFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  clusterName: string;
  /** Impersonate this user (e.g. system:serviceaccount:ns:name): the API server authorizes as them. */
  impersonate?: string;
}

const b64 = (file: string) => readFileSync(file).toString('base64');

/** Renders a self-contained kubeconfig (certificates inlined), optionally impersonating a user. */
export function renderKubeconfig(input: KubeconfigInput): string {
  const user = input.impersonate ? `as-${input.impersonate.replaceAll(':', '-')}` : 'admin';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: input.clusterName,
        cluster: { server: input.server, 'certificate-authority-data': b64(input.caCertFile) },
      },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate-data': b64(input.clientCertFile),
          'client-key-data': b64(input.clientKeyFile),
          ...(input.impersonate ? { as: input.impersonate } : {}),
        },
      },
    ],
    contexts: [{ name: input.clusterName, context: { cluster: input.clusterName, user } }],
    'current-context': input.clusterName,
  });
}

export async function writeKubeconfig(file: string, input: KubeconfigInput): Promise<string> {
  await writeFile(file, renderKubeconfig(input), { mode: 0o600 });
  return file;
}
