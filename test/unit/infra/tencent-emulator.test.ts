// The emulator is exercised through the real tencentcloud-sdk-nodejs clients, so what passes here is what the SDK
// really sends (signature, headers, body) and how it really reports errors (TencentCloudSDKHttpException.code).
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tcr } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tcr/index.js';
import { tke } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tke/index.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CapturedRequest,
  startTencentEmulator,
  TCR_VERSION,
  TEMP_TOKEN_TTL_MS,
  type TencentEmulator,
} from '../../../infra/tencent-emulator/server.js';
import {
  buildCanonicalRequest,
  buildSignedHeaders,
  formatScopeDate,
  parseAuthorization,
  signAuthorization,
  stripPort,
} from '../../../infra/tencent-emulator/tc3.js';

/** The SDK's own TC3 signer (CommonJS, `exports.default = Sign`), loaded as Node loads it. */
interface SdkSigner {
  sign3(input: {
    method: string;
    url: string;
    payload: unknown;
    timestamp: number;
    service: string;
    secretId: string;
    secretKey: string;
    multipart: boolean;
    boundary: string;
    headers: Record<string, string>;
  }): string;
}
const sdkSigner: SdkSigner = createRequire(import.meta.url)(
  'tencentcloud-sdk-nodejs/tencentcloud/common/sign.js',
).default;

const SECRET_ID = 'AKIDUNITTESTEMULATOR00000000000000';
const SECRET_KEY = 'unit-test-secret-key';
const REGION = 'ap-guangzhou';
const REGISTRY_ID = 'tcr-unit0001';
const USERNAME = '100012345678';
const CLUSTER_ID = 'cls-unit0001';
const KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: [{name: internal}]\n';
const EXTRANET_KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: [{name: extranet}]\n';

let emulator: TencentEmulator;
let clock: number;
let captured: CapturedRequest[];
let logLines: string[];

beforeEach(async () => {
  clock = Date.UTC(2026, 0, 15, 8, 0, 0);
  captured = [];
  logLines = [];
  emulator = await startTencentEmulator({
    credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
    registries: [
      { registryId: REGISTRY_ID, region: REGION, username: USERNAME },
      { registryId: 'tcr-beijing01', region: 'ap-beijing' },
    ],
    clusters: [
      {
        clusterId: CLUSTER_ID,
        region: REGION,
        kubeconfig: KUBECONFIG,
        extranetKubeconfig: EXTRANET_KUBECONFIG,
      },
    ],
    internalEndpoints: {
      [REGISTRY_ID]: [{ vpcId: 'vpc-abc123', subnetId: 'subnet-def456', accessIp: '10.0.0.12' }],
    },
    now: () => clock,
    onRequest: (request) => captured.push(request),
    log: (line) => logLines.push(line),
  });
});

afterEach(async () => {
  await emulator.stop();
});

interface ClientOptions {
  secretId?: string;
  secretKey?: string;
  region?: string;
}

function clientConfig(options: ClientOptions = {}) {
  return {
    credential: { secretId: options.secretId ?? SECRET_ID, secretKey: options.secretKey ?? SECRET_KEY },
    region: options.region ?? REGION,
    // An explicit agent keeps an http_proxy in the environment from rerouting loopback calls.
    profile: { httpProfile: { endpoint: emulator.endpoint, protocol: 'http://', agent: new http.Agent() } },
  };
}

function tcrClient(options: ClientOptions = {}) {
  return new tcr.v20190924.Client(clientConfig(options));
}

function tkeClient(options: ClientOptions = {}) {
  return new tke.v20180525.Client(clientConfig(options));
}

/** Posts a hand-signed request, bypassing the SDK, and returns the parsed `Response`. */
function postRaw(headers: Record<string, string>, body: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: emulator.port, method: 'POST', path: '/', headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          expect(response.statusCode).toBe(200);
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')).Response);
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function signedHeadersAt(timestamp: number, body: string, action = 'DescribeInstanceToken') {
  return buildSignedHeaders({
    secretId: SECRET_ID,
    secretKey: SECRET_KEY,
    service: 'tcr',
    timestamp,
    host: emulator.endpoint,
    body,
    action,
    version: TCR_VERSION,
    region: REGION,
  });
}

describe('tc3 signing', () => {
  it('produces exactly the Authorization header the SDK sent', async () => {
    await tcrClient().DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    const request = captured.at(-1)!;
    const sent = String(request.headers.authorization);
    const timestamp = Number(request.headers['x-tc-timestamp']);
    // The SDK sends the port in Host but signs the hostname only, and signs Content-Type without a charset.
    expect(request.headers.host).toBe(emulator.endpoint);
    expect(request.headers['content-type']).toBe('application/json');
    // The SDK derives the scope's service from the endpoint's first label: `127` for 127.0.0.1.
    const service = parseAuthorization(sent)?.service;
    expect(service).toBe('127');
    const ours = signAuthorization({
      secretId: SECRET_ID,
      secretKey: SECRET_KEY,
      service: service!,
      timestamp,
      host: String(request.headers.host),
      body: request.body,
    });
    expect(ours).toBe(sent);
    expect(parseAuthorization(sent)).toMatchObject({
      algorithm: 'TC3-HMAC-SHA256',
      secretId: SECRET_ID,
      date: formatScopeDate(timestamp),
      signedHeaders: ['content-type', 'host'],
    });
  });

  it('matches the SDK signer on a fixed vector', () => {
    const vector = {
      secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
      secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
      service: 'tcr',
      timestamp: 1_551_113_065,
      body: '{"RegistryId":"tcr-abc","TokenType":"longterm"}',
    };
    const sdk = sdkSigner.sign3({
      method: 'POST',
      url: 'https://tcr.tencentcloudapi.com:8443/',
      payload: JSON.parse(vector.body),
      timestamp: vector.timestamp,
      service: vector.service,
      secretId: vector.secretId,
      secretKey: vector.secretKey,
      multipart: false,
      boundary: '',
      headers: { 'Content-Type': 'application/json' },
    });
    const ours = signAuthorization({ ...vector, host: 'tcr.tencentcloudapi.com:8443' });
    expect(ours).toBe(sdk);
    expect(ours).toMatch(
      /^TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE\/2019-02-25\/tcr\/tc3_request, /,
    );
  });

  it('builds the documented canonical request', () => {
    const canonical = buildCanonicalRequest({
      headers: { 'Content-Type': 'application/json', Host: 'tcr.tencentcloudapi.com:443' },
      signedHeaders: ['content-type', 'host'],
      body: '{}',
    });
    expect(canonical).toBe(
      'POST\n/\n\ncontent-type:application/json\nhost:tcr.tencentcloudapi.com\n\ncontent-type;host\n' +
        '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    );
  });

  it('strips ports from IPv4, IPv6 and named hosts, and rejects malformed Authorization headers', () => {
    expect(stripPort('127.0.0.1:8080')).toBe('127.0.0.1');
    expect(stripPort('[::1]:8080')).toBe('[::1]');
    expect(stripPort('tcr.tencentcloudapi.com')).toBe('tcr.tencentcloudapi.com');
    expect(parseAuthorization('Bearer abc')).toBeUndefined();
    expect(parseAuthorization(undefined)).toBeUndefined();
  });
});

describe('TCR instance tokens', () => {
  it('creates a temporary token valid for one hour, in milliseconds', async () => {
    const created = await tcrClient().CreateInstanceToken({ RegistryId: REGISTRY_ID });
    expect(created.Username).toBe(USERNAME);
    expect(created.ExpTime).toBe(clock + TEMP_TOKEN_TTL_MS);
    expect(created.TokenId).toBeUndefined();
    expect(created.RequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.Token!.length).toBeGreaterThanOrEqual(48);
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(true);
    expect(emulator.isTokenValid('someone-else', created.Token!)).toBe(false);
    expect(emulator.isTokenValid(USERNAME, created.Token!, 'tcr-beijing01')).toBe(false);

    clock += TEMP_TOKEN_TTL_MS - 1;
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(true);
    clock += 1;
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(false);
  });

  it('never hands out the same token twice', async () => {
    const client = tcrClient();
    const first = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID });
    const second = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID });
    expect(first.Token).not.toBe(second.Token);
  });

  it('creates long-term tokens and lists only those, with paging', async () => {
    const client = tcrClient();
    const temp = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID, TokenType: 'temp' });
    const a = await client.CreateInstanceToken({
      RegistryId: REGISTRY_ID,
      TokenType: 'longterm',
      Desc: 'fleet a',
    });
    clock += 1000;
    const b = await client.CreateInstanceToken({
      RegistryId: REGISTRY_ID,
      TokenType: 'longterm',
      Desc: 'fleet b',
    });
    expect(a.TokenId).toMatch(/^tk-[0-9a-f]{16}$/);
    expect(a.ExpTime).toBe(0);
    expect(emulator.isTokenValid(USERNAME, a.Token!)).toBe(true);

    const listed = await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    expect(listed.TotalCount).toBe(2);
    expect(listed.Tokens).toEqual([
      {
        Id: a.TokenId,
        Desc: 'fleet a',
        RegistryId: REGISTRY_ID,
        Enabled: true,
        CreatedAt: new Date(clock - 1000).toISOString(),
        ExpiredAt: 0,
      },
      {
        Id: b.TokenId,
        Desc: 'fleet b',
        RegistryId: REGISTRY_ID,
        Enabled: true,
        CreatedAt: new Date(clock).toISOString(),
        ExpiredAt: 0,
      },
    ]);
    expect(JSON.stringify(listed)).not.toContain(temp.Token!);

    const page = await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID, Limit: 1, Offset: 1 });
    expect(page.TotalCount).toBe(2);
    expect(page.Tokens?.map((token) => token.Id)).toEqual([b.TokenId]);
  });

  it('deletes a long-term token, which then stops working', async () => {
    const client = tcrClient();
    const created = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID, TokenType: 'longterm' });
    await client.DeleteInstanceToken({ RegistryId: REGISTRY_ID, TokenId: created.TokenId! });
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(false);
    expect((await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID })).TotalCount).toBe(0);
    await expect(
      client.DeleteInstanceToken({ RegistryId: REGISTRY_ID, TokenId: created.TokenId! }),
    ).rejects.toMatchObject({ code: 'ResourceNotFound' });
  });

  it('disables, re-enables and re-describes a long-term token', async () => {
    const client = tcrClient();
    const created = await client.CreateInstanceToken({
      RegistryId: REGISTRY_ID,
      TokenType: 'longterm',
      Desc: 'x',
    });
    const tokenId = created.TokenId!;

    await client.ModifyInstanceToken({ RegistryId: REGISTRY_ID, TokenId: tokenId, Enable: false });
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(false);
    let listed = await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    expect(listed.Tokens?.[0]?.Enabled).toBe(false);

    await client.ModifyInstanceToken({
      RegistryId: REGISTRY_ID,
      TokenId: tokenId,
      Enable: true,
      ModifyFlag: 2,
    });
    expect(emulator.isTokenValid(USERNAME, created.Token!)).toBe(true);

    await client.ModifyInstanceToken({
      RegistryId: REGISTRY_ID,
      TokenId: tokenId,
      Desc: 'renamed',
      ModifyFlag: 1,
    });
    listed = await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    expect(listed.Tokens?.[0]).toMatchObject({ Desc: 'renamed', Enabled: true });

    await expect(
      client.ModifyInstanceToken({ RegistryId: REGISTRY_ID, TokenId: tokenId, ModifyFlag: 2 }),
    ).rejects.toMatchObject({ code: 'MissingParameter', message: expect.stringContaining('`Enable`') });
  });

  it('answers ResourceNotFound for an unknown registry, or one in another region', async () => {
    await expect(tcrClient().CreateInstanceToken({ RegistryId: 'tcr-missing' })).rejects.toMatchObject({
      code: 'ResourceNotFound',
      message: expect.stringContaining('tcr-missing'),
    });
    await expect(tcrClient().CreateInstanceToken({ RegistryId: 'tcr-beijing01' })).rejects.toMatchObject({
      code: 'ResourceNotFound',
    });
    const inBeijing = await tcrClient({ region: 'ap-beijing' }).CreateInstanceToken({
      RegistryId: 'tcr-beijing01',
    });
    expect(inBeijing.Username).toBe('100000000001');
  });

  it('lists internal endpoints with the API field names', async () => {
    const result = await tcrClient().DescribeInternalEndpoints({ RegistryId: REGISTRY_ID });
    expect(result.TotalCount).toBe(1);
    expect(result.AccessVpcSet).toEqual([
      { VpcId: 'vpc-abc123', SubnetId: 'subnet-def456', Status: 'Running', AccessIp: '10.0.0.12' },
    ]);
  });
});

describe('request validation', () => {
  it('rejects a wrong SecretKey with AuthFailure.SignatureFailure and an unknown SecretId', async () => {
    await expect(
      tcrClient({ secretKey: 'not-the-key' }).CreateInstanceToken({ RegistryId: REGISTRY_ID }),
    ).rejects.toMatchObject({ code: 'AuthFailure.SignatureFailure' });
    await expect(
      tcrClient({ secretId: 'AKIDNOBODY' }).CreateInstanceToken({ RegistryId: REGISTRY_ID }),
    ).rejects.toMatchObject({ code: 'AuthFailure.SecretIdNotFound' });
    expect(emulator.listTokens()).toEqual([]);
  });

  it('rejects a timestamp more than 300 s old with AuthFailure.SignatureExpire', async () => {
    const body = JSON.stringify({ RegistryId: REGISTRY_ID });
    const nowSeconds = Math.floor(Date.now() / 1000);
    const stale = await postRaw(signedHeadersAt(nowSeconds - 400, body), body);
    expect(stale.Error).toMatchObject({ Code: 'AuthFailure.SignatureExpire' });
    expect(stale.RequestId).toEqual(expect.any(String));
    // The same hand-signed request with a fresh timestamp passes, so only the clock made the difference.
    const fresh = await postRaw(signedHeadersAt(nowSeconds, body), body);
    expect(fresh.Error).toBeUndefined();
    expect(fresh.TotalCount).toBe(0);
    // Signed for the product host name, the credential scope names the service directly.
    expect(parseAuthorization(String(captured.at(-1)?.headers.authorization))?.service).toBe('tcr');
    expect(emulator.callLog().at(-1)).toMatchObject({ service: 'tcr', region: REGION });
  });

  it('rejects a missing or malformed Authorization header', async () => {
    const body = '{}';
    const { Authorization: _dropped, ...unsigned } = signedHeadersAt(Math.floor(Date.now() / 1000), body);
    expect((await postRaw(unsigned, body)).Error).toMatchObject({ Code: 'AuthFailure.InvalidAuthorization' });
    const garbled = { ...unsigned, Authorization: 'TC3-HMAC-SHA256 Credential=broken' };
    expect((await postRaw(garbled, body)).Error).toMatchObject({ Code: 'AuthFailure.InvalidAuthorization' });
  });

  it('detects a body changed after signing', async () => {
    const headers = signedHeadersAt(
      Math.floor(Date.now() / 1000),
      JSON.stringify({ RegistryId: REGISTRY_ID }),
    );
    const tampered = await postRaw(headers, JSON.stringify({ RegistryId: 'tcr-beijing01' }));
    expect(tampered.Error).toMatchObject({ Code: 'AuthFailure.SignatureFailure' });
  });

  it('rejects an unknown region with InvalidParameterValue naming it', async () => {
    await expect(
      tcrClient({ region: 'mars-olympus' }).CreateInstanceToken({ RegistryId: REGISTRY_ID }),
    ).rejects.toMatchObject({
      code: 'InvalidParameterValue',
      message: expect.stringContaining('mars-olympus'),
    });
  });

  it('rejects an unknown action and a wrong version', async () => {
    await expect(tcrClient().request('DescribeEverything', {})).rejects.toMatchObject({
      code: 'InvalidAction',
    });
    const body = '{}';
    const headers = {
      ...signedHeadersAt(Math.floor(Date.now() / 1000), body),
      'X-TC-Version': '2017-03-12',
    };
    expect((await postRaw(headers, body)).Error).toMatchObject({ Code: 'NoSuchVersion' });
  });

  it('names the parameter that is missing, unknown, or out of range', async () => {
    const client = tcrClient();
    await expect(client.request('CreateInstanceToken', {})).rejects.toMatchObject({
      code: 'MissingParameter',
      message: expect.stringContaining('`RegistryId`'),
    });
    await expect(
      client.request('CreateInstanceToken', { RegistryId: REGISTRY_ID, Color: 'red' }),
    ).rejects.toMatchObject({ code: 'UnknownParameter', message: expect.stringContaining('`Color`') });
    await expect(
      client.request('CreateInstanceToken', { RegistryId: REGISTRY_ID, TokenType: 'forever' }),
    ).rejects.toMatchObject({
      code: 'InvalidParameterValue',
      message: expect.stringContaining('`TokenType`'),
    });
    await expect(client.request('CreateInstanceToken', { RegistryId: 42 })).rejects.toMatchObject({
      code: 'InvalidParameter',
      message: expect.stringContaining('`RegistryId`'),
    });
    await expect(
      client.request('DescribeInstanceToken', { RegistryId: REGISTRY_ID, Limit: 0 }),
    ).rejects.toMatchObject({ code: 'InvalidParameterValue', message: expect.stringContaining('`Limit`') });
  });
});

describe('faults, delays and call counting', () => {
  it('answers an injected RequestLimitExceeded once, then succeeds', async () => {
    emulator.injectFault({ action: 'CreateInstanceToken', code: 'RequestLimitExceeded' });
    const client = tcrClient();
    // Another action is not affected by a fault aimed at CreateInstanceToken.
    await expect(client.DescribeInstanceToken({ RegistryId: REGISTRY_ID })).resolves.toMatchObject({
      TotalCount: 0,
    });
    await expect(client.CreateInstanceToken({ RegistryId: REGISTRY_ID })).rejects.toMatchObject({
      code: 'RequestLimitExceeded',
    });
    const retried = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID });
    expect(emulator.isTokenValid(USERNAME, retried.Token!)).toBe(true);
    expect(emulator.calls('CreateInstanceToken')).toBe(2);
    expect(emulator.callLog().map((call) => call.code)).toEqual([
      undefined,
      'RequestLimitExceeded',
      undefined,
    ]);
  });

  it('repeats a fault the requested number of times and can be cleared', async () => {
    emulator.injectFault({ code: 'InternalError', times: 2 });
    const client = tcrClient();
    await expect(client.DescribeInstanceToken({ RegistryId: REGISTRY_ID })).rejects.toMatchObject({
      code: 'InternalError',
    });
    await expect(client.DescribeInternalEndpoints({ RegistryId: REGISTRY_ID })).rejects.toMatchObject({
      code: 'InternalError',
    });
    await expect(client.DescribeInstanceToken({ RegistryId: REGISTRY_ID })).resolves.toMatchObject({
      TotalCount: 0,
    });
    emulator.injectFault({ code: 'InternalError', times: Number.POSITIVE_INFINITY });
    emulator.clearFaults();
    await expect(client.DescribeInstanceToken({ RegistryId: REGISTRY_ID })).resolves.toMatchObject({
      TotalCount: 0,
    });
  });

  it('answers slowly when a delay is injected', async () => {
    // 1 s, not 200 ms: the undelayed call must come in under the threshold on a machine busy with the other
    // unit files (a signed SDK request to a local server, which a 190 ms bound left little room for).
    emulator.injectDelay({ action: 'DescribeInstanceToken', ms: 1000 });
    const client = tcrClient();
    const started = performance.now();
    await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    const again = performance.now();
    await client.DescribeInstanceToken({ RegistryId: REGISTRY_ID });
    expect(performance.now() - again).toBeLessThan(900);
  });

  it('counts every call per action, failed ones included, and resets', async () => {
    const client = tcrClient();
    await client.CreateInstanceToken({ RegistryId: REGISTRY_ID });
    await expect(client.CreateInstanceToken({ RegistryId: 'tcr-missing' })).rejects.toBeDefined();
    await expect(
      tcrClient({ secretKey: 'wrong' }).DescribeInstanceToken({ RegistryId: REGISTRY_ID }),
    ).rejects.toBeDefined();
    expect(emulator.calls('CreateInstanceToken')).toBe(2);
    expect(emulator.calls('DescribeInstanceToken')).toBe(1);
    expect(emulator.calls()).toBe(3);
    expect(emulator.callLog()[2]).toMatchObject({
      action: 'DescribeInstanceToken',
      code: 'AuthFailure.SignatureFailure',
    });
    emulator.resetCalls();
    expect(emulator.calls()).toBe(0);
  });

  it('never logs secrets, signatures or tokens', async () => {
    const created = await tcrClient().CreateInstanceToken({ RegistryId: REGISTRY_ID, TokenType: 'longterm' });
    await expect(
      tcrClient({ secretKey: 'wrong' }).DescribeInstanceToken({ RegistryId: REGISTRY_ID }),
    ).rejects.toBeDefined();
    const signature = parseAuthorization(String(captured[0]?.headers.authorization))?.signature;
    expect(logLines).toHaveLength(2);
    expect(logLines[0]).toContain('CreateInstanceToken ap-guangzhou -> OK');
    const all = logLines.join('\n');
    for (const secret of [SECRET_KEY, created.Token!, signature!]) expect(all).not.toContain(secret);
  });
});

describe('TKE kubeconfig', () => {
  it('returns the internal kubeconfig by default and the extranet one on request', async () => {
    const client = tkeClient();
    expect((await client.DescribeClusterKubeconfig({ ClusterId: CLUSTER_ID })).Kubeconfig).toBe(KUBECONFIG);
    const extranet = await client.DescribeClusterKubeconfig({ ClusterId: CLUSTER_ID, IsExtranet: true });
    expect(extranet.Kubeconfig).toBe(EXTRANET_KUBECONFIG);
    // The SDK signs with the endpoint's first label ("127"), so the emulator tells TKE apart by its API version.
    expect(parseAuthorization(String(captured.at(-1)?.headers.authorization))?.service).toBe('127');
    expect(emulator.callLog().map((call) => call.service)).toEqual(['tke', 'tke']);
  });

  it('answers ResourceNotFound.ClusterNotFound for an unknown cluster', async () => {
    await expect(tkeClient().DescribeClusterKubeconfig({ ClusterId: 'cls-missing' })).rejects.toMatchObject({
      code: 'ResourceNotFound.ClusterNotFound',
    });
  });

  it('does not serve TCR actions under the TKE scope', async () => {
    await expect(
      tkeClient().request('CreateInstanceToken', { RegistryId: REGISTRY_ID }),
    ).rejects.toMatchObject({
      code: 'InvalidAction',
    });
  });
});

describe('registry token service (Docker token protocol)', () => {
  let service: TencentEmulator;
  let username: string;
  let password: string;

  beforeEach(async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    service = await startTencentEmulator({
      credentials: [{ secretId: SECRET_ID, secretKey: SECRET_KEY }],
      registries: [{ registryId: REGISTRY_ID, region: REGION, username: USERNAME }],
      registryTokenService: {
        registryId: REGISTRY_ID,
        service: 'unit-registry',
        issuer: 'unit-issuer',
        keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        certDerBase64: Buffer.from('not verified here').toString('base64'),
      },
    });
    const client = new tcr.v20190924.Client({
      ...clientConfig(),
      profile: { httpProfile: { endpoint: service.endpoint, protocol: 'http://', agent: new http.Agent() } },
    });
    const token = await client.CreateInstanceToken({ RegistryId: REGISTRY_ID, TokenType: 'longterm' });
    username = token.Username ?? '';
    password = token.Token ?? '';
  });

  afterEach(async () => {
    await service.stop();
  });

  async function tokenRequest(
    method: 'GET' | 'POST',
    opts: { form?: Record<string, string>; basic?: string; query?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${service.url}/service/token${opts.query ?? ''}`, {
      method,
      headers: {
        ...(opts.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(opts.basic ? { authorization: `Basic ${Buffer.from(opts.basic).toString('base64')}` } : {}),
      },
      ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  const claims = (jwt: unknown) =>
    JSON.parse(Buffer.from(String(jwt).split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub: string;
      aud: string;
      access: { type: string; name: string; actions: string[] }[];
    };

  it("answers containerd's OAuth2 password POST with an access_token for the requested scopes", async () => {
    const res = await tokenRequest('POST', {
      form: {
        grant_type: 'password',
        username,
        password,
        service: 'unit-registry',
        client_id: 'containerd-client',
        scope: 'repository:demo/app:pull repository:demo/other:pull,push',
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.access_token).toBe(res.body.token);
    expect(res.body.expires_in).toBe(300);
    expect(claims(res.body.access_token)).toMatchObject({
      sub: username,
      aud: 'unit-registry',
      access: [
        { type: 'repository', name: 'demo/app', actions: ['pull'] },
        { type: 'repository', name: 'demo/other', actions: ['pull', 'push'] },
      ],
    });
    expect(service.registryTokenRequests('POST')).toBe(1);
  });

  it('refuses a wrong password with an OAuth2 401 (containerd then tries GET, also refused)', async () => {
    const post = await tokenRequest('POST', {
      form: { grant_type: 'password', username, password: 'wrong', service: 'unit-registry' },
    });
    expect(post).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_grant' }) });
    const get = await tokenRequest('GET', { basic: `${username}:wrong`, query: '?service=unit-registry' });
    expect(get.status).toBe(401);
    const anonymous = await tokenRequest('GET', { query: '?service=unit-registry' });
    expect(anonymous.status).toBe(401);
  });

  it('answers a refresh_token grant with 400 unsupported_grant_type, so that clients fall back to GET', async () => {
    const res = await tokenRequest('POST', { form: { grant_type: 'refresh_token', refresh_token: 'x' } });
    expect(res).toEqual({ status: 400, body: expect.objectContaining({ error: 'unsupported_grant_type' }) });
  });

  it('still answers the GET flow with Basic credentials (skopeo, docker)', async () => {
    const res = await tokenRequest('GET', {
      basic: `${username}:${password}`,
      query: '?service=unit-registry&scope=repository:demo/app:pull',
    });
    expect(res.status).toBe(200);
    expect(claims(res.body.token).access).toEqual([
      { type: 'repository', name: 'demo/app', actions: ['pull'] },
    ]);
  });
});
