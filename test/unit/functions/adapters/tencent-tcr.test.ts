// The TCR adapter through the real tencentcloud-sdk-nodejs against the local emulator: the endpoint override,
// response validation, error classification, messages without the SecretKey, and the client cache.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultCredentialFrom,
  mapSdkError,
  TencentApiEnv,
  TencentTcrApi,
} from '../../../../functions/adapters/tencent-tcr.js';
import { startTencentEmulator, type TencentEmulator } from '../../../../infra/tencent-emulator/server.js';
import { RetryableError, TerminalError } from '../../../../shared/errors.js';

const SECRET_ID = 'AKIDUNITTESTTCRADAPTER000000000000';
const SECRET_KEY = 'unit-secret-key-N0t-In-Messages-7f3a';
const REGION = 'ap-guangzhou';
const REGISTRY_ID = 'tcr-adapter01';
const credential = { secretId: SECRET_ID, secretKey: SECRET_KEY };

let emulator: TencentEmulator;
let api: TencentTcrApi;

beforeEach(async () => {
  emulator = await startTencentEmulator({
    credentials: [credential],
    registries: [{ registryId: REGISTRY_ID, region: REGION }],
    internalEndpoints: {
      [REGISTRY_ID]: [
        { vpcId: 'vpc-abc123', subnetId: 'subnet-1', accessIp: '10.0.0.12' },
        { vpcId: 'vpc-def456', subnetId: 'subnet-2', accessIp: '10.0.1.12', status: 'Creating' },
      ],
    },
  });
  api = TencentTcrApi.fromEnv(
    TencentApiEnv.parse({ TENCENTCLOUD_ENDPOINT: emulator.endpoint, TENCENTCLOUD_PROTOCOL: 'http://' }),
  );
});
afterEach(async () => {
  await emulator.stop();
});

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('TencentTcrApi.describeInternalEndpoints', () => {
  it('returns every endpoint with its status', async () => {
    const endpoints = await api.describeInternalEndpoints({
      registryId: REGISTRY_ID,
      region: REGION,
      credential,
    });
    expect(endpoints).toEqual([
      { vpcId: 'vpc-abc123', subnetId: 'subnet-1', accessIp: '10.0.0.12', status: 'Running' },
      { vpcId: 'vpc-def456', subnetId: 'subnet-2', accessIp: '10.0.1.12', status: 'Creating' },
    ]);
    expect(emulator.callLog()).toMatchObject([{ action: 'DescribeInternalEndpoints', region: REGION }]);
  });

  it('reports a wrong SecretKey as terminal, naming registry and region, never the key', async () => {
    const wrongKey = 'the-wrong-key-Zq9';
    const error = await failure(
      api.describeInternalEndpoints({
        registryId: REGISTRY_ID,
        region: REGION,
        credential: { secretId: SECRET_ID, secretKey: wrongKey },
      }),
    );
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(/registry tcr-adapter01 in ap-guangzhou: AuthFailure\.SignatureFailure/);
    expect(error.message).not.toContain(wrongKey);
    expect(error.message).not.toContain(SECRET_KEY);
  });

  it.each([
    [
      'an unknown SecretId',
      { registryId: REGISTRY_ID, region: REGION, secretId: 'AKIDNOBODY' },
      /AuthFailure\.SecretIdNotFound/,
    ],
    ['an unknown registry', { registryId: 'tcr-missing', region: REGION }, /ResourceNotFound/],
    ['a registry of another region', { registryId: REGISTRY_ID, region: 'ap-beijing' }, /ResourceNotFound/],
    ['an unknown region', { registryId: REGISTRY_ID, region: 'mars-olympus' }, /InvalidParameterValue/],
  ])('reports %s as terminal', async (_what, input, code) => {
    const error = await failure(
      api.describeInternalEndpoints({
        registryId: input.registryId,
        region: input.region,
        credential: { secretId: 'secretId' in input ? input.secretId : SECRET_ID, secretKey: SECRET_KEY },
      }),
    );
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.message).toMatch(code);
    expect(error.message).toContain(input.registryId);
    expect(error.message).not.toContain(SECRET_KEY);
  });

  it.each(['RequestLimitExceeded', 'InternalError', 'ServiceUnavailable'])('retries %s', async (code) => {
    emulator.injectFault({ action: 'DescribeInternalEndpoints', code });
    const error = await failure(
      api.describeInternalEndpoints({ registryId: REGISTRY_ID, region: REGION, credential }),
    );
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toContain(code);
    // The fault was one call: the next one works.
    await expect(
      api.describeInternalEndpoints({ registryId: REGISTRY_ID, region: REGION, credential }),
    ).resolves.toHaveLength(2);
  });

  it('retries when nothing answers (network)', async () => {
    await emulator.stop();
    const error = await failure(
      api.describeInternalEndpoints({ registryId: REGISTRY_ID, region: REGION, credential }),
    );
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toMatch(/registry tcr-adapter01 in ap-guangzhou/);
    emulator = await startTencentEmulator();
  });

  it('caches one client per (region, secretId), and replaces it when the SecretKey changes', async () => {
    const call = (region: string, secretKey = SECRET_KEY) =>
      api
        .describeInternalEndpoints({
          registryId: REGISTRY_ID,
          region,
          credential: { secretId: SECRET_ID, secretKey },
        })
        .catch(() => undefined);
    await call(REGION);
    await call(REGION);
    expect(api.cachedClients).toBe(1);
    await call('ap-beijing');
    expect(api.cachedClients).toBe(2);
    await expect(call(REGION, 'rotated-key')).resolves.toBeUndefined();
    expect(api.cachedClients).toBe(2);
    // Back to the right key: a fresh client signs with it.
    await expect(call(REGION)).resolves.toHaveLength(2);
  });
});

describe('mapSdkError', () => {
  it('classifies HTTP errors without an API code by status', () => {
    const http = (httpCode: number) => Object.assign(new Error('Bad Gateway'), { httpCode, requestId: '' });
    expect(mapSdkError(http(502), 'x', 'k')).toBeInstanceOf(RetryableError);
    expect(mapSdkError(http(429), 'x', 'k')).toBeInstanceOf(RetryableError);
    expect(mapSdkError(http(403), 'x', 'k')).toBeInstanceOf(TerminalError);
  });

  it('removes the SecretKey from any message', () => {
    const error = mapSdkError(new Error('boom sk-123 boom'), 'call', 'sk-123');
    expect(error.message).toBe('call: boom [redacted] boom');
  });
});

describe('TencentApiEnv', () => {
  it('defaults to the real endpoint over https and treats empty keys as absent', () => {
    const env = TencentApiEnv.parse({ TENCENTCLOUD_SECRET_ID: '', TENCENTCLOUD_SECRET_KEY: '' });
    expect(env.TENCENTCLOUD_ENDPOINT).toBe('tcr.tencentcloudapi.com');
    expect(env.TENCENTCLOUD_PROTOCOL).toBe('https://');
    expect(defaultCredentialFrom(env)).toBeUndefined();
    expect(
      defaultCredentialFrom(
        TencentApiEnv.parse({ TENCENTCLOUD_SECRET_ID: 'id', TENCENTCLOUD_SECRET_KEY: 'key' }),
      ),
    ).toEqual({ secretId: 'id', secretKey: 'key' });
  });

  it('refuses an endpoint with a scheme', () => {
    expect(
      TencentApiEnv.safeParse({ TENCENTCLOUD_ENDPOINT: 'https://tcr.tencentcloudapi.com' }).success,
    ).toBe(false);
  });
});
