import { createHash } from 'node:crypto';
import { tcr } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tcr/index.js';
import { tke } from 'tencentcloud-sdk-nodejs/tencentcloud/services/tke/index.js';
import { z } from 'zod';
import { backoffDelay } from '../../shared/backoff.js';
import { emptyAsUnset, seconds } from '../../shared/config.js';
import { abortable, abortReason, bindSignal, type SignalBound } from '../../shared/deadline.js';
import { RetryableError, TerminalError } from '../../shared/errors.js';
import { tencentHttpProfile } from '../../shared/tencent-http.js';
import type { InstanceTokenInfo, InternalEndpoint, IssuedToken, TencentCredential } from '../core/model.js';
import type { RegistryCall, TcrApi, TkeApi } from '../core/ports.js';
import { CredentialRejected } from '../core/registry-tokens/tencent-credentials.js';

// TCR's API through tencentcloud-sdk-nodejs (there is no per-product package for TCR: deep import). The
// endpoint is configurable so that the local emulator (infra/tencent-emulator) stands in for the real one.

/** The functions' Tencent Cloud settings, from the environment. */
export const TencentApiEnv = z.object({
  /** The functions' own API key, for CRs without spec.tcr.credentialsSecretRef. */
  TENCENTCLOUD_SECRET_ID: emptyAsUnset,
  TENCENTCLOUD_SECRET_KEY: emptyAsUnset,
  /** API host (`host[:port]`, no scheme): `tcr.tencentcloudapi.com`, or an emulator's `127.0.0.1:PORT`. */
  TENCENTCLOUD_ENDPOINT: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, 'TENCENTCLOUD_ENDPOINT must be host[:port], without a scheme')
    .default('tcr.tencentcloudapi.com'),
  TENCENTCLOUD_PROTOCOL: z.enum(['https://', 'http://']).default('https://'),
  /** Seconds per API request: well under an SCF invocation's job budget. */
  TENCENTCLOUD_TIMEOUT_SECONDS: seconds('TENCENTCLOUD_TIMEOUT_SECONDS', 1).max(60).default(10),
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

const CreateInstanceTokenResponse = z.object({
  Username: z.string().min(1),
  Token: z.string().min(1),
  ExpTime: z.number().nonnegative(),
  TokenId: z.string().nullish(),
});

const DescribeInstanceTokenResponse = z.object({
  TotalCount: z.number().int().nonnegative(),
  Tokens: z
    .array(
      z.object({
        Id: z.string(),
        Desc: z.string().nullish(),
        Enabled: z.boolean().nullish(),
        CreatedAt: z.string().nullish(),
      }),
    )
    .nullish(),
});

const DescribeClusterKubeconfigResponse = z.object({ Kubeconfig: z.string().min(1) });

/**
 * ExpTime's unit is undocumented (observed: milliseconds). A value that only makes sense as seconds (before
 * the year 33658 in ms is any 13-digit number; seconds have 10 digits) is converted, so either reading works.
 */
export function expTimeToMs(expTime: number): number {
  if (expTime <= 0) return 0;
  return expTime < 1e11 ? expTime * 1000 : expTime;
}

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

/** Codes that refuse the key itself (another key may work): a CredentialRejected, terminal for this key. */
const KEY_REFUSED_CODES = [/^AuthFailure(\.|$)/, /^UnauthorizedOperation/];

type Client = InstanceType<typeof tcr.v20190924.Client>;
type TkeClient = InstanceType<typeof tke.v20180525.Client>;

/** Answers worth retrying at once, inside one job run, before the job itself is retried with backoff. */
const QUICK_RETRY_CODES = [/^RequestLimitExceeded/, /^InternalError/, /^ServiceUnavailable/];

export interface TencentTcrApiOptions {
  endpoint: string;
  protocol: 'https://' | 'http://';
  timeoutSeconds: number;
  /** Attempts per call for throttling and service errors (full-jitter exponential backoff between). */
  attempts?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class TencentTcrApi implements TcrApi, TkeApi, SignalBound {
  /** The job's deadline (set on a per-job view by withSignal): every request carries it. */
  signal: AbortSignal | undefined;
  /** One client per (region, secretId) for the warm instance's life; a rotated SecretKey replaces it. */
  private readonly clients = new Map<string, { keyHash: string; client: Client }>();
  private readonly tkeClients = new Map<string, { keyHash: string; client: TkeClient }>();
  private readonly profile: ReturnType<typeof tencentHttpProfile>;

  constructor(private readonly options: TencentTcrApiOptions) {
    this.profile = tencentHttpProfile(options);
  }

  withSignal(signal: AbortSignal | undefined): this {
    return bindSignal(this, signal);
  }

  /** One SDK request carrying this view's signal (the SDK's typed methods take no options). */
  private send(
    client: { request(action: string, req: unknown, options?: { signal?: AbortSignal }): Promise<unknown> },
    action: string,
    params: Record<string, unknown>,
  ): Promise<unknown> {
    return abortable(client.request(action, params, this.signal ? { signal: this.signal } : {}), this.signal);
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

  async createInstanceToken(
    input: RegistryCall & { tokenType: 'temp' | 'longterm'; desc: string },
  ): Promise<IssuedToken> {
    const what = `CreateInstanceToken (${input.tokenType}) of registry ${input.registryId} in ${input.region}`;
    const raw = await this.withRetry(what, input.credential, () =>
      this.send(this.clientFor(input.region, input.credential), 'CreateInstanceToken', {
        RegistryId: input.registryId,
        TokenType: input.tokenType,
        Desc: input.desc,
      }),
    );
    const parsed = CreateInstanceTokenResponse.safeParse(raw);
    // Never echo the answer: it holds the token.
    if (!parsed.success) throw new TerminalError(`${what}: unexpected response (fields missing or mistyped)`);
    if (input.tokenType === 'longterm' && !parsed.data.TokenId) {
      throw new TerminalError(`${what}: the answer has no TokenId, so the token could never be revoked`);
    }
    return {
      username: parsed.data.Username,
      token: parsed.data.Token,
      expiresAt: expTimeToMs(parsed.data.ExpTime),
      tokenId: parsed.data.TokenId ?? undefined,
    };
  }

  async deleteInstanceToken(input: RegistryCall & { tokenId: string }): Promise<'deleted' | 'gone'> {
    const what = `DeleteInstanceToken ${input.tokenId} of registry ${input.registryId} in ${input.region}`;
    try {
      await this.withRetry(what, input.credential, () =>
        this.send(this.clientFor(input.region, input.credential), 'DeleteInstanceToken', {
          RegistryId: input.registryId,
          TokenId: input.tokenId,
        }),
      );
      return 'deleted';
    } catch (error) {
      // The registry exists (else the terminal error names it) but the token does not: already revoked.
      if (
        error instanceof TerminalError &&
        /ResourceNotFound/.test(error.message) &&
        /token/i.test(error.message)
      ) {
        return 'gone';
      }
      throw error;
    }
  }

  async listInstanceTokens(input: RegistryCall): Promise<InstanceTokenInfo[]> {
    const what = `DescribeInstanceToken of registry ${input.registryId} in ${input.region}`;
    const out: InstanceTokenInfo[] = [];
    for (let offset = 0; ; ) {
      const raw = await this.withRetry(what, input.credential, () =>
        this.send(this.clientFor(input.region, input.credential), 'DescribeInstanceToken', {
          RegistryId: input.registryId,
          Limit: 100,
          Offset: offset,
        }),
      );
      const parsed = DescribeInstanceTokenResponse.safeParse(raw);
      if (!parsed.success) throw new TerminalError(`${what}: unexpected response`);
      const page = parsed.data.Tokens ?? [];
      for (const t of page) {
        out.push({
          tokenId: t.Id,
          desc: t.Desc ?? '',
          enabled: t.Enabled ?? true,
          createdAt: t.CreatedAt ? Date.parse(t.CreatedAt) : Number.NaN,
        });
      }
      offset += page.length;
      if (page.length === 0 || offset >= parsed.data.TotalCount) return out;
    }
  }

  async describeClusterKubeconfig(input: {
    clusterId: string;
    region: string;
    extranet: boolean;
    credential: TencentCredential;
  }): Promise<string> {
    const what = `DescribeClusterKubeconfig of TKE cluster ${input.clusterId} in ${input.region}`;
    const raw = await this.withRetry(what, input.credential, () =>
      this.send(this.tkeClientFor(input.region, input.credential), 'DescribeClusterKubeconfig', {
        ClusterId: input.clusterId,
        IsExtranet: input.extranet,
      }),
    );
    const parsed = DescribeClusterKubeconfigResponse.safeParse(raw);
    if (!parsed.success) throw new TerminalError(`${what}: the answer has no Kubeconfig`);
    return parsed.data.Kubeconfig;
  }

  /**
   * Calls the API; throttling and service errors are retried a few times with full-jitter exponential
   * backoff (so that many callers do not retry in lockstep), then surface as RetryableError for the job's
   * own backoff. Everything else is mapped at once.
   */
  private async withRetry<T>(
    what: string,
    credential: TencentCredential,
    call: () => Promise<T>,
  ): Promise<T> {
    const attempts = this.options.attempts ?? 3;
    const base = this.options.backoffBaseMs ?? 200;
    const cap = this.options.backoffCapMs ?? 3000;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (this.signal?.aborted) throw abortReason(this.signal, what);
        const code = SdkError.safeParse(error).data?.code ?? '';
        if (attempt >= attempts || !QUICK_RETRY_CODES.some((p) => p.test(code))) {
          throw mapSdkError(error, what, credential.secretKey);
        }
        await abortable(sleep(backoffDelay(attempt, base, cap)), this.signal, what);
      }
    }
  }

  async describeInternalEndpoints(input: {
    registryId: string;
    region: string;
    credential: TencentCredential;
  }): Promise<InternalEndpoint[]> {
    const what = `DescribeInternalEndpoints of registry ${input.registryId} in ${input.region}`;
    let raw: unknown;
    try {
      raw = await this.send(this.clientFor(input.region, input.credential), 'DescribeInternalEndpoints', {
        RegistryId: input.registryId,
      });
    } catch (error) {
      if (this.signal?.aborted) throw abortReason(this.signal, what);
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

  /** One SDK client per (product, region, secretId) for the warm instance's life; a rotated SecretKey replaces it. */
  private cachedClient<C>(
    cache: Map<string, { keyHash: string; client: C }>,
    region: string,
    credential: TencentCredential,
    make: () => C,
  ): C {
    const key = `${region}|${credential.secretId}`;
    const keyHash = createHash('sha256').update(credential.secretKey).digest('hex');
    const cached = cache.get(key);
    if (cached && cached.keyHash === keyHash) return cached.client;
    const client = make();
    cache.set(key, { keyHash, client });
    return client;
  }

  private tkeClientFor(region: string, credential: TencentCredential): TkeClient {
    return this.cachedClient(
      this.tkeClients,
      region,
      credential,
      () =>
        new tke.v20180525.Client({
          credential: { secretId: credential.secretId, secretKey: credential.secretKey },
          region,
          // TKE has its own host in the cloud; an emulator serves every product on one.
          profile: {
            httpProfile: { ...this.httpProfile(), endpoint: this.options.endpoint.replace(/^tcr\./, 'tke.') },
          },
        }),
    );
  }

  private httpProfile() {
    return this.profile;
  }

  private clientFor(region: string, credential: TencentCredential): Client {
    return this.cachedClient(
      this.clients,
      region,
      credential,
      () =>
        new tcr.v20190924.Client({
          credential: { secretId: credential.secretId, secretKey: credential.secretKey },
          region,
          profile: { httpProfile: this.httpProfile() },
        }),
    );
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
    if (KEY_REFUSED_CODES.some((p) => p.test(code))) return new CredentialRejected(message);
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
