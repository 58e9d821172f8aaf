import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TencentTcrApi } from '../../functions/adapters/tencent-tcr.js';
import { SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import {
  createTokenSigner,
  type LocalRegistry,
  startRegistry,
  writeOciImage,
} from '../../infra/local/registry.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { REGISTRY_TOKENS_KEY } from '../../shared/jobs.js';
import { createCr, deleteCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import { readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// The credential the functions distribute really pulls: a docker-registry (distribution 2.8) with bearer-token
// auth whose token service is the Tencent emulator (as TCR's registry accepts instance tokens), an image pushed
// with skopeo, and skopeo fetching its manifest with the .dockerconfigjson read back from the cluster. A revoked
// token is refused.

const run = promisify(execFile);
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-pull${randomBytes(3).toString('hex')}`;
const SECRET_ID = `AKIDPULL${randomBytes(10).toString('hex').toUpperCase()}`;
const SECRET_KEY = `pullKey${randomBytes(16).toString('hex')}`;
const KEY_SECRET = uniqueName('pull-api-key');
const CR = uniqueName('pull');
const NS = uniqueName('pull-ns');
const IMAGE = 'demo/app:v1';

let emulator: TencentEmulator;
let registry: LocalRegistry;
let fx: FunctionsHarness;
let dir: string;
let pushedDigest: string;
const savedEnv = { ...process.env };

/** skopeo with the pull Secret's .dockerconfigjson as its auth file; resolves to the raw manifest. */
async function inspectWith(dockerConfigJson: string): Promise<string> {
  const authfile = path.join(dir, `auth-${randomBytes(4).toString('hex')}.json`);
  await writeFile(authfile, dockerConfigJson);
  const { stdout } = await run('skopeo', [
    'inspect',
    '--raw',
    '--tls-verify=false',
    '--authfile',
    authfile,
    `docker://${registry.host}/${IMAGE}`,
  ]);
  return stdout;
}

async function pullSecretConfig(): Promise<string | undefined> {
  const secret = await readSecret(kc, NS, `tcr.ips${CR}`);
  const raw = secret?.data?.['.dockerconfigjson'];
  return raw ? Buffer.from(raw, 'base64').toString('utf8') : undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-pull-e2e-'));
  const signer = await createTokenSigner(dir);
  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [{ registryId: REGISTRY, region: REGION }],
    registryTokenService: {
      registryId: REGISTRY,
      service: 'tcr-e2e-registry',
      issuer: 'tcr-emulator',
      keyPem: signer.keyPem,
      certDerBase64: signer.certDerBase64,
    },
  });
  registry = await startRegistry({
    realm: `${emulator.url}/service/token`,
    service: 'tcr-e2e-registry',
    issuer: 'tcr-emulator',
    signer,
  });
  // The image, pushed with an instance token of its own (as a CI system would).
  const api = new TencentTcrApi({ endpoint: emulator.endpoint, protocol: 'http://', timeoutSeconds: 5 });
  const pusher = await api.createInstanceToken({
    registryId: REGISTRY,
    region: REGION,
    credential: { secretId: SECRET_ID, secretKey: SECRET_KEY },
    tokenType: 'temp',
    desc: 'e2e push',
  });
  const layout = path.join(dir, 'image');
  pushedDigest = await writeOciImage(layout, 'v1', `hello from ${REGISTRY}\n`);
  await run('skopeo', [
    'copy',
    '--dest-tls-verify=false',
    '--dest-creds',
    `${pusher.username}:${pusher.token}`,
    `oci:${layout}:v1`,
    `docker://${registry.host}/${IMAGE}`,
  ]);

  Object.assign(process.env, { TENCENTCLOUD_ENDPOINT: emulator.endpoint, TENCENTCLOUD_PROTOCOL: 'http://' });
  fx = await startFunctions({ TOKEN_REVOKE_GRACE_SECONDS: '1' });
  await core.createNamespacedSecret({
    namespace: SYSTEM_NAMESPACE,
    body: { metadata: { name: KEY_SECRET }, stringData: { SecretId: SECRET_ID, SecretKey: SECRET_KEY } },
  });
  await createNamespace(kc, NS);
}, 120_000);

afterAll(async () => {
  if (fx) {
    await deleteCr(kc, CR).catch(() => {});
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR });
    await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
    await fx.drain(30_000).catch(() => {});
    await fx.close();
  }
  await core.deleteNamespacedSecret({ namespace: SYSTEM_NAMESPACE, name: KEY_SECRET }).catch(() => {});
  await registry?.stop();
  await emulator?.stop();
  process.env = savedEnv;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pull with the distributed credential', () => {
  let first: string;
  let current: string;

  it('fetches the manifest from the registry with the Secret read back from the cluster', async () => {
    await createCr(kc, CR, {
      namespaces: NS,
      docker: { server: registry.host },
      tcr: {
        registryId: REGISTRY,
        region: REGION,
        tokenType: 'longterm',
        credentialsSecretRef: { namespace: SYSTEM_NAMESPACE, name: KEY_SECRET },
      },
    });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR }, 'added');
    first = await waitFor('the pull Secret', pullSecretConfig, { timeoutMs: 30_000 });
    expect(Object.keys(JSON.parse(first).auths)).toEqual([registry.host]);
    const manifest = await inspectWith(first);
    expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(pushedDigest);
    expect(JSON.parse(manifest).layers).toHaveLength(1);
    expect(emulator.registryTokenRequests()).toBeGreaterThanOrEqual(2);
  });

  it('fails with the revoked token after a rotation, and works with the new one', async () => {
    await fx.rt.tokenReports.requestRotation([REGISTRY]);
    await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
    const second = await waitFor('the rotated Secret', async () => {
      const now = await pullSecretConfig();
      return now && now !== first ? now : undefined;
    });
    const oldAuth = JSON.parse(first).auths[registry.host] as { username: string; password: string };
    // The grace period (1 s here) passes; the next refreshes revoke the replaced long-term token.
    await waitFor(
      'the old token to be revoked',
      async () => {
        await fx.enqueue({ ...REGISTRY_TOKENS_KEY });
        return !emulator.isTokenValid(oldAuth.username, oldAuth.password, REGISTRY);
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    const refused = await inspectWith(first).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? String(error),
    );
    expect(refused).toMatch(/unauthorized|authentication required|401/i);
    const manifest = await inspectWith(second);
    expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(pushedDigest);
    current = second;
  });

  it('deleting the CR revokes the token it used and removes the token Secret', async () => {
    const auth = JSON.parse(current).auths[registry.host] as { username: string; password: string };
    expect(emulator.isTokenValid(auth.username, auth.password, REGISTRY)).toBe(true);
    await deleteCr(kc, CR);
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: CR }, 'deleted');
    await waitFor(
      'the token to be revoked',
      () => !emulator.isTokenValid(auth.username, auth.password, REGISTRY),
      {
        timeoutMs: 30_000,
      },
    );
    expect(emulator.listTokens(REGISTRY).filter((t) => t.type === 'longterm')).toEqual([]);
    const stores = await core.listNamespacedSecret({
      namespace: SYSTEM_NAMESPACE,
      labelSelector: 'tcr.tencentcloudcr.com/registry-token',
    });
    expect(stores.items.map((s) => s.metadata?.name)).not.toContain(`tcr-token.${REGISTRY}.longterm`);
    expect(await pullSecretConfig()).toBeUndefined();
    const refused = await inspectWith(current).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? String(error),
    );
    expect(refused).toMatch(/unauthorized|authentication required|401/i);
  });
});
