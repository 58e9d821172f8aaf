import { inject } from 'vitest';
import { TencentTcrApi } from '../../functions/adapters/tencent-tcr.js';
import { createTokenSigner, type LocalRegistry, startRegistry } from '../../infra/local/registry.js';
import { startTencentEmulator, type TencentEmulator } from '../../infra/tencent-emulator/server.js';

/**
 * A TCR instance as the node sees it: the local TLS registry (certificate from the run's CA) whose token
 * service is the Tencent emulator, which also issues instance tokens (`issueToken`) for `registryId`.
 */
export interface TcrInstance {
  emulator: TencentEmulator;
  registry: LocalRegistry;
  issueToken(): Promise<{ username: string; token: string }>;
  stop(): Promise<void>;
}

export async function startTcrInstance(
  dir: string,
  opts: { registryId: string; region: string; secretId: string; secretKey: string; service: string },
): Promise<TcrInstance> {
  const signer = await createTokenSigner(dir);
  const emulator = await startTencentEmulator({
    credentials: [{ secretId: opts.secretId, secretKey: opts.secretKey }],
    registries: [{ registryId: opts.registryId, region: opts.region }],
    registryTokenService: {
      registryId: opts.registryId,
      service: opts.service,
      issuer: 'tcr-emulator',
      keyPem: signer.keyPem,
      certDerBase64: signer.certDerBase64,
    },
  });
  const registry = await startRegistry({
    realm: `${emulator.url}/service/token`,
    service: opts.service,
    issuer: 'tcr-emulator',
    signer,
    tls: { pki: inject('caFiles') },
  }).catch(async (error: unknown) => {
    await emulator.stop();
    throw error;
  });
  const api = new TencentTcrApi({ endpoint: emulator.endpoint, protocol: 'http://', timeoutSeconds: 5 });
  return {
    emulator,
    registry,
    issueToken: () =>
      api.createInstanceToken({
        registryId: opts.registryId,
        region: opts.region,
        credential: { secretId: opts.secretId, secretKey: opts.secretKey },
        tokenType: 'temp',
        desc: 'e2e',
      }),
    async stop() {
      await registry.stop();
      await emulator.stop();
    },
  };
}
