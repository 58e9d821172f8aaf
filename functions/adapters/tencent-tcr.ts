import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { tcr } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tcr/index.js';
import { z } from 'zod';
import { RetryableError, TerminalError } from '../../shared/errors.js';
import type { InternalEndpoint, TcrApi, TencentCredential } from '../core/tcr-api.js';

// TCR's API through tencentcloud-sdk-nodejs (there is no per-product package for TCR: deep import). The
// endpoint is configurable so that the local emulator (infra/tencent-emulator) stands in for the real one.

const emptyAsAbsent = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** The functions' Tencent Cloud settings, from the environment. */
export const TencentApiEnv = z.object({
  /** The functions' own API key, for CRs without spec.tcr.credentialsSecretRef. */
  TENCENTCLOUD_SECRET_ID: emptyAsAbsent,
  TENCENTCLOUD_SECRET_KEY: emptyAsAbsent,
  /** API host (`host[:port]`, no scheme): `tcr.tencentcloudapi.com`, or an emulator's `127.0.0.1:PORT`. */
  TENCENTCLOUD_ENDPOINT: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, 'TENCENTCLOUD_ENDPOINT must be host[:port], without a scheme')
    .default('tcr.tencentcloudapi.com'),
  TENCENTCLOUD_PROTOCOL: z.enum(['https://', 'http://']).default('https://'),
  /** Seconds per API request: well under an SCF invocation's job budget. */
  TENCENTCLOUD_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(60).default(10),
});
export type TencentApiEnv = z.infer<typeof TencentApiEnv>;

/** The environment's key, or undefined unless both halves are set. */
export function defaultCredentialFrom(env: TencentApiEnv): TencentCredential | undefined {
  return env.TENCENTCLOUD_SECRET_ID && env.TENCENTCLOUD_SECRET_KEY
    ? { secretId: env.TENCENTCLOUD_SECRET_ID, secretKey: env.TENCENTCLOUD_SECRET_KEY }
    : undefined;
}

/** DescribeInternalEndpoints' answer, checked: the SDK's types are hopes (fields "may return null"). */
const DescribeInternalEndpointsResponse = z.object({
  AccessVpcSet: z
    .array(
      z.object({
        VpcId: z.string().nullish(),
        SubnetId: z.string().nullish(),
        Status: z.string().nullish(),
        AccessIp: z.string().nullish(),
      }),
    )
    .nullish(),
});

/** The SDK's TencentCloudSDKHttpException, by shape (its class is a CommonJS default export). */
const SdkError = z.object({
  message: z.string(),
  code: z.string().optional(),
  httpCode: z.number().optional(),
  requestId: z.string().optional(),
});

/** API error codes (prefixes) that no retry can fix; everything else (and network errors) is retried. */
const TERMINAL_CODES = [
  /^AuthFailure(\.|$)/,
  /^InvalidParameter/,
  /^MissingParameter/,
  /^UnknownParameter/,
  /^ResourceNotFound/,
  /^UnsupportedRegion/,
  /^UnauthorizedOperation/,
  /^OperationDenied/,
  /^InvalidAction/,
];

type Client = InstanceType<typeof tcr.v20190924.Client>;

export interface TencentTcrApiOptions {
  endpoint: string;
  protocol: 'https://' | 'http://';
  timeoutSeconds: number;
}

const isLoopback = (endpoint: string) => /^(127\.|localhost(:|$)|\[::1\])/.test(endpoint);

export class TencentTcrApi implements TcrApi {
  /** One client per (region, secretId) for the warm instance's life; a rotated SecretKey replaces it. */
  private readonly clients = new Map<string, { keyHash: string; client: Client }>();
  private readonly agent: http.Agent | undefined;

  constructor(private readonly options: TencentTcrApiOptions) {
    // The SDK routes through $http_proxy unless given an agent: a loopback emulator must be reached directly.
    this.agent = isLoopback(options.endpoint)
      ? new (options.protocol === 'http://' ? http.Agent : https.Agent)({ keepAlive: true })
      : undefined;
  }

  static fromEnv(env: TencentApiEnv): TencentTcrApi {
    return new TencentTcrApi({
      endpoint: env.TENCENTCLOUD_ENDPOINT,
      protocol: env.TENCENTCLOUD_PROTOCOL,
      timeoutSeconds: env.TENCENTCLOUD_TIMEOUT_SECONDS,
    });
  }

  /** How many SDK clients are cached (for tests). */
  get cachedClients(): number {
    return this.clients.size;
  }

  async describeInternalEndpoints(input: {
    registryId: string;
    region: string;
    credential: TencentCredential;
  }): Promise<InternalEndpoint[]> {
    const what = `DescribeInternalEndpoints of registry ${input.registryId} in ${input.region}`;
    let raw: unknown;
    try {
      raw = await this.clientFor(input.region, input.credential).DescribeInternalEndpoints({
        RegistryId: input.registryId,
      });
    } catch (error) {
      throw mapSdkError(error, what, input.credential.secretKey);
    }
    const parsed = DescribeInternalEndpointsResponse.safeParse(raw);
    if (!parsed.success) {
      // An answer we cannot read is not going to change on retry.
      throw new TerminalError(
        `${what}: unexpected response (${parsed.error.issues[0]?.message ?? 'invalid'})`,
      );
    }
    return (parsed.data.AccessVpcSet ?? []).map((v) => ({
      vpcId: v.VpcId ?? '',
      subnetId: v.SubnetId ?? '',
      accessIp: v.AccessIp ?? '',
      status: v.Status ?? '',
    }));
  }

  private clientFor(region: string, credential: TencentCredential): Client {
    const key = `${region}|${credential.secretId}`;
    const keyHash = createHash('sha256').update(credential.secretKey).digest('hex');
    const cached = this.clients.get(key);
    if (cached && cached.keyHash === keyHash) return cached.client;
    const client = new tcr.v20190924.Client({
      credential: { secretId: credential.secretId, secretKey: credential.secretKey },
      region,
      profile: {
        httpProfile: {
          endpoint: this.options.endpoint,
          protocol: this.options.protocol,
          reqTimeout: this.options.timeoutSeconds,
          ...(this.agent ? { agent: this.agent } : {}),
        },
      },
    });
    this.clients.set(key, { keyHash, client });
    return client;
  }
}

/**
 * SDK failures → TerminalError (bad key, bad parameter, unknown instance or region) or RetryableError
 * (rate limit, service errors, HTTP 5xx/429, network). The message names the call, registry and region,
 * keeps the API's code and message and request id, and never carries the SecretKey.
 */
export function mapSdkError(error: unknown, what: string, secretKey: string): Error {
  const parsed = SdkError.safeParse(error);
  const scrub = (text: string) => (secretKey ? text.split(secretKey).join('[redacted]') : text);
  if (!parsed.success) return new RetryableError(scrub(`${what}: ${String(error)}`));
  const { code, httpCode, requestId } = parsed.data;
  const request = requestId ? ` (RequestId ${requestId})` : '';
  if (code !== undefined) {
    const message = scrub(`${what}: ${code}: ${parsed.data.message}${request}`);
    return TERMINAL_CODES.some((p) => p.test(code))
      ? new TerminalError(message)
      : new RetryableError(message);
  }
  if (httpCode !== undefined) {
    const message = scrub(`${what}: HTTP ${httpCode} ${parsed.data.message}`);
    return httpCode === 429 || httpCode >= 500 ? new RetryableError(message) : new TerminalError(message);
  }
  // No code and no HTTP status: the request never got an answer (DNS, refused, reset, timeout).
  return new RetryableError(scrub(`${what}: ${parsed.data.message}`));
}
