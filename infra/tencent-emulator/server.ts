// A local stand-in for the parts of Tencent Cloud API 3.0 this project calls (TCR instance tokens, TCR internal
// endpoints, TKE kubeconfig), strict where the real service is strict (TC3 signature, clock skew, region,
// parameters) so code that passes here behaves the same against the real endpoint.
import { randomBytes, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { type CamPolicy, camAllows } from './cam.js';
import { createScfService, ScfApiError, type ScfEmulator, type ScfEmulatorOptions } from './scf.js';
import { MAX_CLOCK_SKEW_SECONDS, parseAuthorization, TC3_ALGORITHM, verifySignature } from './tc3.js';

/** Regions the emulator accepts by default: real Tencent Cloud region names. Others get InvalidParameterValue. */
export const DEFAULT_REGIONS: readonly string[] = [
  'ap-guangzhou',
  'ap-shanghai',
  'ap-nanjing',
  'ap-beijing',
  'ap-chengdu',
  'ap-chongqing',
  'ap-hongkong',
  'ap-singapore',
  'ap-jakarta',
  'ap-seoul',
  'ap-tokyo',
  'ap-bangkok',
  'na-siliconvalley',
  'na-ashburn',
  'eu-frankfurt',
  'sa-saopaulo',
];

export const TCR_VERSION = '2019-09-24';
export const TKE_VERSION = '2018-05-25';
/** TCR temporary tokens last one hour (CreateInstanceToken docs: "temp (default, valid for one hour)"). */
export const TEMP_TOKEN_TTL_MS = 60 * 60 * 1000;
/** Username of a registry's tokens when none is configured: the shape of an account UIN. */
export const DEFAULT_USERNAME = '100000000001';
/** API 3.0 with TC3 accepts POST bodies up to 10 MB. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface EmulatorCredential {
  secretId: string;
  secretKey: string;
  /** Session token of temporary credentials; when set, requests must carry it as X-TC-Token. */
  token?: string;
  /** A CAM policy: when set, the key may only do what it allows (e.g. scf:Invoke on one function). */
  policy?: CamPolicy;
}

export interface EmulatorRegistry {
  registryId: string;
  region: string;
  username?: string;
}

export interface EmulatorCluster {
  clusterId: string;
  region: string;
  /** Returned for IsExtranet false (the default). */
  kubeconfig: string;
  /** Returned for IsExtranet true; falls back to `kubeconfig`. */
  extranetKubeconfig?: string;
}

export interface EmulatorInternalEndpoint {
  vpcId: string;
  subnetId: string;
  accessIp: string;
  status?: string;
}

export interface TencentEmulatorOptions {
  credentials?: EmulatorCredential[];
  registries?: EmulatorRegistry[];
  clusters?: EmulatorCluster[];
  /** Per registry id: the VPC links DescribeInternalEndpoints lists. */
  internalEndpoints?: Record<string, EmulatorInternalEndpoint[]>;
  /** Accepted regions; defaults to DEFAULT_REGIONS. */
  regions?: readonly string[];
  /**
   * Clock (ms) for token lifetimes, so tests can expire tokens. Signature freshness is always checked against
   * the real clock, because clients (the SDK) sign with the real clock.
   */
  now?: () => number;
  /** ExpTime/ExpiredAt reported for long-term tokens (ms). Undocumented by Tencent; 0 here means "never". */
  longtermTokenExpTime?: number;
  /**
   * A TCR instance's registry token service (Docker bearer-token flow): `GET /service/token` with Basic
   * username:instance-token, or `POST /service/token` with the OAuth2 password form (containerd), answers a
   * JWT that a docker-registry configured with `auth.token` (this issuer, service and the signer's
   * certificate) accepts. Refuses tokens that are unknown, revoked or expired.
   */
  registryTokenService?: {
    registryId: string;
    service: string;
    issuer: string;
    keyPem: string;
    /** Base64 DER of the signer's certificate (JWT `x5c`). */
    certDerBase64: string;
    ttlSeconds?: number;
  };
  /** SCF: functions to run (their code from a local folder), instances, timers (infra/tencent-emulator/scf.ts). */
  scf?: ScfEmulatorOptions;
  /** The account (CAM resources, SCF context). */
  uin?: string;
  port?: number;
  host?: string;
  /** One line per request (action, region, outcome); never credentials, signatures or tokens. */
  log?: (line: string) => void;
  /** Test tap on every request as received, e.g. to compare a client's Authorization header with tc3.ts. */
  onRequest?: (request: CapturedRequest) => void;
}

export interface CapturedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface CallRecord {
  action: string;
  service?: string;
  region?: string;
  /** Error code answered; undefined while in flight or on success. */
  code?: string;
  at: number;
}

export type FaultCode =
  | 'RequestLimitExceeded'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'ResourceUnavailable'
  | 'FailedOperation'
  | (string & {});

export interface FaultSpec {
  /** Only calls of this action; all actions when omitted. */
  action?: string;
  code: FaultCode;
  message?: string;
  /** How many matching calls fail; 1 when omitted, Infinity for all. */
  times?: number;
}

export interface DelaySpec {
  action?: string;
  ms: number;
  /** How many matching calls are slowed; 1 when omitted, Infinity for all. */
  times?: number;
}

export interface TokenSnapshot {
  registryId: string;
  username: string;
  type: 'temp' | 'longterm';
  /** Long-term tokens only. */
  tokenId?: string;
  desc: string;
  enabled: boolean;
  createdAt: number;
  /** ms since the epoch; 0 = never. */
  expiresAt: number;
}

export interface TencentEmulator {
  /** `127.0.0.1:PORT`, for `profile.httpProfile.endpoint` (with `protocol: 'http://'`). */
  endpoint: string;
  url: string;
  port: number;
  /** Requests received for an action (all actions when omitted), failed ones included. */
  calls(action?: string): number;
  callLog(): readonly CallRecord[];
  resetCalls(): void;
  injectFault(spec: FaultSpec): void;
  injectDelay(spec: DelaySpec): void;
  /** Drops pending faults and delays. */
  clearFaults(): void;
  /** What a registry token service would accept: false for unknown, deleted, disabled or expired tokens. */
  isTokenValid(username: string, token: string, registryId?: string): boolean;
  /** Requests to the registry token service (`/service/token`), all or by method. */
  registryTokenRequests(method?: 'GET' | 'POST'): number;
  listTokens(registryId?: string): TokenSnapshot[];
  addCredential(credential: EmulatorCredential): void;
  addRegistry(registry: EmulatorRegistry): void;
  addCluster(cluster: EmulatorCluster): void;
  setInternalEndpoints(registryId: string, endpoints: EmulatorInternalEndpoint[]): void;
  /** The SCF service: functions, instances, invocation records, the functions' logs. */
  scf: ScfEmulator;
  stop(): Promise<void>;
}

/** An API error answered as `{"Response":{"Error":{Code,Message},RequestId}}` with HTTP 200, as the real API. */
class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface TokenRecord extends TokenSnapshot {
  token: string;
}

interface ActionContext {
  region: string;
  now: number;
}

type ActionHandler = (
  params: Record<string, unknown>,
  context: ActionContext,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

interface ServiceDefinition {
  version: string;
  actions: Record<string, ActionHandler>;
  /** The CAM resource an action acts on (default `*`). */
  resourceOf?(action: string, params: Record<string, unknown>, region: string): string;
}

/** Zod issues → the API's parameter error codes, naming the parameter as the real messages do. */
function describeParameterProblem(
  issues: readonly z.core.$ZodIssue[],
  input: Record<string, unknown>,
): ApiError {
  const unknown = issues.find((issue) => issue.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    return new ApiError('UnknownParameter', `The parameter \`${unknown.keys[0]}\` is not recognized.`);
  }
  const missing = issues.find(
    (issue) => issue.code === 'invalid_type' && issue.path.length === 1 && !(String(issue.path[0]) in input),
  );
  if (missing) {
    return new ApiError(
      'MissingParameter',
      `The request is missing a required parameter \`${String(missing.path[0])}\`.`,
    );
  }
  const first = issues[0];
  const name = first ? first.path.map(String).join('.') : '';
  if (!first || first.code === 'invalid_type') {
    return new ApiError(
      'InvalidParameter',
      `The value type of parameter \`${name}\` is not valid: ${first?.message ?? 'invalid'}.`,
    );
  }
  return new ApiError(
    'InvalidParameterValue',
    `The value of parameter \`${name}\` is not valid: ${first.message}.`,
  );
}

function parseParams<T extends z.ZodType>(schema: T, params: Record<string, unknown>): z.output<T> {
  const result = schema.safeParse(params);
  if (!result.success) throw describeParameterProblem(result.error.issues, params);
  return result.data;
}

const createInstanceTokenSchema = z.strictObject({
  RegistryId: z.string().min(1),
  TokenType: z.enum(['temp', 'longterm']).default('temp'),
  Desc: z.string().optional(),
});
const describeInstanceTokenSchema = z.strictObject({
  RegistryId: z.string().min(1),
  Limit: z.number().int().min(1).max(100).default(20),
  Offset: z.number().int().min(0).default(0),
});
const deleteInstanceTokenSchema = z.strictObject({
  RegistryId: z.string().min(1),
  TokenId: z.string().min(1),
});
const modifyInstanceTokenSchema = z.strictObject({
  RegistryId: z.string().min(1),
  TokenId: z.string().min(1),
  Enable: z.boolean().optional(),
  Desc: z.string().optional(),
  // Docs: 1 changes the description, 2 enables/disables; 2 by default.
  ModifyFlag: z.union([z.literal(1), z.literal(2)]).default(2),
});
const describeInternalEndpointsSchema = z.strictObject({ RegistryId: z.string().min(1) });
const describeClusterKubeconfigSchema = z.strictObject({
  ClusterId: z.string().min(1),
  IsExtranet: z.boolean().default(false),
});

function readBody(request: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function headerValue(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function matchesAction(spec: { action?: string }, action: string): boolean {
  return spec.action === undefined || spec.action === action;
}

export async function startTencentEmulator(options: TencentEmulatorOptions = {}): Promise<TencentEmulator> {
  const now = options.now ?? Date.now;
  const regions = new Set(options.regions ?? DEFAULT_REGIONS);
  const log = options.log ?? (() => {});
  const longtermExpTime = options.longtermTokenExpTime ?? 0;

  const credentials = new Map<string, EmulatorCredential>();
  const registries = new Map<string, EmulatorRegistry>();
  const clusters = new Map<string, EmulatorCluster>();
  const internalEndpoints = new Map<string, EmulatorInternalEndpoint[]>();
  const tokens = new Map<string, TokenRecord>();
  const callRecords: CallRecord[] = [];
  const faults: Array<Required<Pick<FaultSpec, 'code' | 'times'>> & FaultSpec> = [];
  const delays: Array<Required<Pick<DelaySpec, 'ms' | 'times'>> & DelaySpec> = [];
  const sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  for (const credential of options.credentials ?? []) credentials.set(credential.secretId, credential);
  for (const registry of options.registries ?? []) registries.set(registry.registryId, registry);
  for (const cluster of options.clusters ?? []) clusters.set(cluster.clusterId, cluster);
  for (const [registryId, list] of Object.entries(options.internalEndpoints ?? {})) {
    internalEndpoints.set(registryId, list);
  }

  /** A registry is regional: asking another region for it answers "not found", as the real API. */
  function findRegistry(registryId: string, region: string): EmulatorRegistry {
    const registry = registries.get(registryId);
    if (!registry || registry.region !== region) {
      throw new ApiError(
        'ResourceNotFound',
        `The registry instance \`${registryId}\` does not exist in region \`${region}\`.`,
      );
    }
    return registry;
  }

  function findLongtermToken(registryId: string, tokenId: string): TokenRecord {
    for (const record of tokens.values()) {
      if (record.type === 'longterm' && record.registryId === registryId && record.tokenId === tokenId) {
        return record;
      }
    }
    throw new ApiError(
      'ResourceNotFound',
      `The token \`${tokenId}\` does not exist in registry \`${registryId}\`.`,
    );
  }

  function snapshot(record: TokenRecord): TokenSnapshot {
    const { token: _secret, ...rest } = record;
    return { ...rest };
  }

  function isExpired(record: TokenRecord, at: number): boolean {
    return record.expiresAt !== 0 && at >= record.expiresAt;
  }

  const tcr: ServiceDefinition = {
    version: TCR_VERSION,
    actions: {
      CreateInstanceToken(params, context) {
        const input = parseParams(createInstanceTokenSchema, params);
        const registry = findRegistry(input.RegistryId, context.region);
        const longterm = input.TokenType === 'longterm';
        const record: TokenRecord = {
          registryId: registry.registryId,
          username: registry.username ?? DEFAULT_USERNAME,
          type: input.TokenType,
          desc: input.Desc ?? '',
          enabled: true,
          createdAt: context.now,
          expiresAt: longterm ? longtermExpTime : context.now + TEMP_TOKEN_TTL_MS,
          // 48 random bytes: unguessable, and distinct from every earlier token.
          token: randomBytes(48).toString('base64url'),
        };
        if (longterm) record.tokenId = `tk-${randomBytes(8).toString('hex')}`;
        tokens.set(record.token, record);
        return {
          Username: record.username,
          Token: record.token,
          ExpTime: record.expiresAt,
          ...(record.tokenId === undefined ? {} : { TokenId: record.tokenId }),
        };
      },
      DescribeInstanceToken(params, context) {
        const input = parseParams(describeInstanceTokenSchema, params);
        findRegistry(input.RegistryId, context.region);
        // Docs: the list and TotalCount cover long-term tokens only.
        const longterm = [...tokens.values()]
          .filter((record) => record.type === 'longterm' && record.registryId === input.RegistryId)
          .sort((a, b) => a.createdAt - b.createdAt);
        return {
          TotalCount: longterm.length,
          Tokens: longterm.slice(input.Offset, input.Offset + input.Limit).map((record) => ({
            Id: record.tokenId,
            Desc: record.desc,
            RegistryId: record.registryId,
            Enabled: record.enabled,
            CreatedAt: new Date(record.createdAt).toISOString(),
            ExpiredAt: record.expiresAt,
          })),
        };
      },
      DeleteInstanceToken(params, context) {
        const input = parseParams(deleteInstanceTokenSchema, params);
        findRegistry(input.RegistryId, context.region);
        const record = findLongtermToken(input.RegistryId, input.TokenId);
        tokens.delete(record.token);
        return {};
      },
      ModifyInstanceToken(params, context) {
        const input = parseParams(modifyInstanceTokenSchema, params);
        findRegistry(input.RegistryId, context.region);
        const record = findLongtermToken(input.RegistryId, input.TokenId);
        if (input.ModifyFlag === 1) {
          if (input.Desc === undefined) {
            throw new ApiError('MissingParameter', 'The request is missing a required parameter `Desc`.');
          }
          record.desc = input.Desc;
        } else {
          if (input.Enable === undefined) {
            throw new ApiError('MissingParameter', 'The request is missing a required parameter `Enable`.');
          }
          record.enabled = input.Enable;
        }
        return {};
      },
      DescribeInternalEndpoints(params, context) {
        const input = parseParams(describeInternalEndpointsSchema, params);
        findRegistry(input.RegistryId, context.region);
        const list = internalEndpoints.get(input.RegistryId) ?? [];
        return {
          AccessVpcSet: list.map((endpoint) => ({
            VpcId: endpoint.vpcId,
            SubnetId: endpoint.subnetId,
            Status: endpoint.status ?? 'Running',
            AccessIp: endpoint.accessIp,
          })),
          TotalCount: list.length,
        };
      },
    },
  };

  const tke: ServiceDefinition = {
    version: TKE_VERSION,
    actions: {
      DescribeClusterKubeconfig(params, context) {
        const input = parseParams(describeClusterKubeconfigSchema, params);
        const cluster = clusters.get(input.ClusterId);
        if (!cluster || cluster.region !== context.region) {
          throw new ApiError(
            'ResourceNotFound.ClusterNotFound',
            `The cluster \`${input.ClusterId}\` does not exist in region \`${context.region}\`.`,
          );
        }
        return {
          Kubeconfig: input.IsExtranet
            ? (cluster.extranetKubeconfig ?? cluster.kubeconfig)
            : cluster.kubeconfig,
        };
      },
    },
  };

  const uin = options.uin ?? DEFAULT_USERNAME;
  const scf = createScfService(options.scf ?? {}, { uin, appId: '1250000000', log });
  const services: Record<string, ServiceDefinition> = { tcr, tke, scf: scf.definition };

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      sleepers.add(sleeper);
    });
  }

  /** Signature checks, in the order the API reports them; returns the authenticated scope. */
  function authenticate(
    request: http.IncomingMessage,
    body: Buffer,
  ): { service: string; credential: EmulatorCredential } {
    const authorization = parseAuthorization(headerValue(request.headers, 'authorization'));
    if (!authorization || authorization.algorithm !== TC3_ALGORITHM) {
      throw new ApiError(
        'AuthFailure.InvalidAuthorization',
        'The Authorization header is missing or is not `TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.',
      );
    }
    if (
      !authorization.signedHeaders.includes('content-type') ||
      !authorization.signedHeaders.includes('host')
    ) {
      throw new ApiError(
        'AuthFailure.InvalidAuthorization',
        'SignedHeaders must include at least `content-type` and `host`.',
      );
    }
    const rawTimestamp = headerValue(request.headers, 'x-tc-timestamp');
    if (rawTimestamp === undefined) {
      throw new ApiError('MissingParameter', 'The request is missing a required parameter `Timestamp`.');
    }
    const timestamp = Number(rawTimestamp);
    if (!/^\d+$/.test(rawTimestamp) || !Number.isSafeInteger(timestamp)) {
      throw new ApiError(
        'InvalidParameterValue',
        'The value of parameter `Timestamp` is not a Unix time in seconds.',
      );
    }
    const serverSeconds = Math.floor(Date.now() / 1000);
    if (Math.abs(serverSeconds - timestamp) > MAX_CLOCK_SKEW_SECONDS) {
      throw new ApiError(
        'AuthFailure.SignatureExpire',
        `Signature expired: the request timestamp ${timestamp} is more than ${MAX_CLOCK_SKEW_SECONDS}s away from the server time ${serverSeconds}.`,
      );
    }
    const credential = credentials.get(authorization.secretId);
    if (!credential) {
      throw new ApiError(
        'AuthFailure.SecretIdNotFound',
        'The SecretId is not found, please ensure that your SecretId is correct.',
      );
    }
    const url = new URL(request.url ?? '/', 'http://emulator');
    const headers: Record<string, string> = {};
    for (const name of authorization.signedHeaders) headers[name] = headerValue(request.headers, name) ?? '';
    const valid = verifySignature({
      authorization,
      secretKey: credential.secretKey,
      timestamp,
      method: request.method ?? 'POST',
      path: url.pathname,
      query: url.search.slice(1),
      headers,
      body,
    });
    if (!valid) {
      throw new ApiError(
        'AuthFailure.SignatureFailure',
        'The provided credentials could not be validated. Please check your signature is correct.',
      );
    }
    if (credential.token !== undefined && headerValue(request.headers, 'x-tc-token') !== credential.token) {
      throw new ApiError(
        'AuthFailure.TokenFailure',
        'The session token (X-TC-Token) is missing or not valid.',
      );
    }
    return { service: authorization.service, credential };
  }

  /**
   * The product a request is for. The credential scope names it when the client used a product host name; but the
   * SDK signs with the endpoint's first label, which is `127` for `127.0.0.1:PORT`, so then the API version (each
   * product has its own) and, failing that, the action identify it.
   */
  function resolveService(scopeService: string, action: string, version: string): string | undefined {
    if (Object.hasOwn(services, scopeService)) return scopeService;
    const entries = Object.entries(services);
    const byVersion = entries.filter(([, definition]) => definition.version === version);
    if (byVersion.length === 1) return byVersion[0]?.[0];
    if (byVersion.length > 1) return undefined;
    const byAction = entries.filter(([, definition]) => Object.hasOwn(definition.actions, action));
    return byAction.length === 1 ? byAction[0]?.[0] : undefined;
  }

  function routeAction(
    request: http.IncomingMessage,
    scopeService: string,
    action: string,
  ): { service: string; handler: ActionHandler; region: string } {
    if (request.method !== 'POST') {
      throw new ApiError('UnsupportedProtocol', 'This emulator accepts only POST requests with a JSON body.');
    }
    if (action === '')
      throw new ApiError('MissingParameter', 'The request is missing a required parameter `Action`.');
    const version = headerValue(request.headers, 'x-tc-version');
    if (version === undefined) {
      throw new ApiError('MissingParameter', 'The request is missing a required parameter `Version`.');
    }
    const service = resolveService(scopeService, action, version);
    const definition = service === undefined ? undefined : services[service];
    const handler =
      definition && Object.hasOwn(definition.actions, action) ? definition.actions[action] : undefined;
    if (service === undefined || !definition || !handler) {
      throw new ApiError('InvalidAction', `The requested action \`${action}\` does not exist.`);
    }
    if (version !== definition.version) {
      throw new ApiError(
        'NoSuchVersion',
        `The API version \`${version}\` of service \`${service}\` does not exist.`,
      );
    }
    const region = headerValue(request.headers, 'x-tc-region');
    if (region === undefined || region === '') {
      throw new ApiError('MissingParameter', 'The request is missing a required parameter `Region`.');
    }
    if (!regions.has(region)) {
      // The real message for an unknown region names the parameter; the value is added to help debugging.
      throw new ApiError(
        'InvalidParameterValue',
        `A value specified in \`Region\` (\`${region}\`) is not valid, is unsupported, or cannot be used.`,
      );
    }
    const contentType = headerValue(request.headers, 'content-type') ?? '';
    if (!/^application\/json\b/i.test(contentType.trim())) {
      throw new ApiError(
        'InvalidParameter',
        `The Content-Type \`${contentType}\` is not supported; use application/json.`,
      );
    }
    return { service, handler, region };
  }

  function takeFault(action: string): FaultSpec | undefined {
    const index = faults.findIndex((fault) => matchesAction(fault, action));
    const fault = faults[index];
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
    return fault;
  }

  function takeDelay(action: string): number {
    const index = delays.findIndex((delay) => matchesAction(delay, action));
    const delay = delays[index];
    if (!delay) return 0;
    delay.times -= 1;
    if (delay.times <= 0) delays.splice(index, 1);
    return delay.ms;
  }

  async function answer(request: http.IncomingMessage, record: CallRecord): Promise<Record<string, unknown>> {
    const body = await readBody(request);
    options.onRequest?.({
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
      body: body ?? Buffer.alloc(0),
    });
    if (body === undefined) {
      throw new ApiError('RequestSizeLimitExceeded', `The request body exceeds ${MAX_BODY_BYTES} bytes.`);
    }
    const { service: scopeService, credential } = authenticate(request, body);
    const { service, handler, region } = routeAction(request, scopeService, record.action);
    record.service = service;
    record.region = region;
    const delayMs = takeDelay(record.action);
    if (delayMs > 0) await sleep(delayMs);
    const fault = takeFault(record.action);
    if (fault) throw new ApiError(fault.code, fault.message ?? `Injected fault \`${fault.code}\`.`);
    let params: unknown;
    try {
      params = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      throw new ApiError('InvalidParameter', 'The request body is not valid JSON.');
    }
    if (params === null || typeof params !== 'object' || Array.isArray(params)) {
      throw new ApiError('InvalidParameter', 'The request body must be a JSON object.');
    }
    const input = params as Record<string, unknown>;
    if (credential.policy) {
      const resource = services[service]?.resourceOf?.(record.action, input, region) ?? '*';
      if (!camAllows(credential.policy, `${service}:${record.action}`, resource))
        throw new ApiError(
          'AuthFailure.UnauthorizedOperation',
          `The request is not authorized: ${service}:${record.action} on ${resource} is not allowed by the key's CAM policy.`,
        );
    }
    return handler(input, { region, now: now() });
  }

  /**
   * Docker token flow (what TCR's registry front does for an instance token), both ways a client asks:
   * - `GET /service/token?service&scope` with Basic username:instance-token (skopeo, docker);
   * - `POST /service/token`, an OAuth2 form (`grant_type=password`, username, password, service, scope), which
   *   containerd tries first whenever it has credentials. It falls back to GET only on 400/401/404 (405 with a
   *   username), so the POST must get a real token response or a real OAuth2 error, never a Tencent API body.
   * Answers `{token, access_token, expires_in, issued_at}`: a JWT the docker-registry verifies.
   */
  function serveRegistryToken(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    form?: URLSearchParams,
  ): void {
    const config = options.registryTokenService;
    const deny = (status: number, message: string, oauthError?: string) => {
      response.writeHead(status, {
        'content-type': 'application/json',
        ...(form ? {} : { 'www-authenticate': 'Basic realm="tcr"' }),
      });
      response.end(
        JSON.stringify(
          oauthError
            ? { error: oauthError, error_description: message }
            : { errors: [{ code: 'UNAUTHORIZED', message }] },
        ),
      );
      log(`registry token ${request.method} -> ${status} ${message}`);
    };
    if (!config) {
      deny(404, 'no registry token service configured');
      return;
    }
    registryTokenRequests[form ? 'POST' : 'GET'] += 1;
    const url = new URL(request.url ?? '/', 'http://emulator');
    let username = '';
    let password = '';
    let scopes: string[];
    let service: string | null;
    if (form) {
      const grant = form.get('grant_type');
      if (grant !== 'password') {
        // No refresh tokens are issued: a client holding one falls back to GET on this 400.
        deny(400, `grant_type ${grant ?? '(none)'} is not supported; use password`, 'unsupported_grant_type');
        return;
      }
      username = form.get('username') ?? '';
      password = form.get('password') ?? '';
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      service = form.get('service');
    } else {
      const basic = /^Basic\s+(.+)$/i.exec(headerValue(request.headers, 'authorization') ?? '')?.[1];
      const decoded = basic ? Buffer.from(basic, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      username = colon > 0 ? decoded.slice(0, colon) : '';
      password = colon > 0 ? decoded.slice(colon + 1) : '';
      scopes = url.searchParams.getAll('scope');
      service = url.searchParams.get('service');
    }
    if (!username || !isValid(username, password, config.registryId)) {
      deny(
        401,
        'authentication required: unknown, revoked or expired instance token',
        form ? 'invalid_grant' : undefined,
      );
      return;
    }
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      return type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
    });
    const issuedAt = Math.floor(Date.now() / 1000);
    const ttl = config.ttlSeconds ?? 300;
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const signingInput = `${b64({ alg: 'RS256', typ: 'JWT', x5c: [config.certDerBase64] })}.${b64({
      iss: config.issuer,
      sub: username,
      aud: service ?? config.service,
      exp: issuedAt + ttl,
      nbf: issuedAt - 10,
      iat: issuedAt,
      jti: randomUUID(),
      access,
    })}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), config.keyPem).toString('base64url');
    const jwt = `${signingInput}.${signature}`;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        token: jwt,
        access_token: jwt,
        expires_in: ttl,
        issued_at: new Date(issuedAt * 1000).toISOString(),
        ...(form ? { scope: scopes.join(' ') } : {}),
      }),
    );
    log(
      `registry token ${request.method} -> 200 (${access.map((a) => `${a.name}:${a.actions.join(',')}`).join(' ')})`,
    );
  }

  const registryTokenRequests = { GET: 0, POST: 0 };
  const isValid = (username: string, token: string, registryId?: string) => {
    const record = tokens.get(token);
    if (!record) return false;
    if (registryId !== undefined && record.registryId !== registryId) return false;
    return record.username === username && record.enabled && !isExpired(record, now());
  };

  const server = http.createServer((request, response) => {
    if ((request.url ?? '').startsWith('/service/token')) {
      if (request.method === 'GET') serveRegistryToken(request, response);
      else if (request.method === 'POST') {
        readBody(request).then(
          (body) => serveRegistryToken(request, response, new URLSearchParams(body?.toString('utf8') ?? '')),
          () => response.destroy(),
        );
      } else {
        response.writeHead(405, { allow: 'GET, POST' }).end();
      }
      return;
    }
    const started = Date.now();
    const record: CallRecord = { action: headerValue(request.headers, 'x-tc-action') ?? '', at: now() };
    callRecords.push(record);
    const traceId = headerValue(request.headers, 'x-tc-traceid');
    const send = (payload: Record<string, unknown>) => {
      if (response.destroyed || response.writableEnded) return;
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      if (traceId !== undefined) headers['x-tc-traceid'] = traceId;
      response.writeHead(200, headers);
      response.end(JSON.stringify({ Response: { ...payload, RequestId: randomUUID() } }));
      log(
        `${record.action || '-'} ${record.region ?? '-'} -> ${record.code ?? 'OK'} (${Date.now() - started} ms)`,
      );
    };
    answer(request, record).then(send, (error: unknown) => {
      const apiError =
        error instanceof ApiError
          ? error
          : error instanceof ScfApiError
            ? new ApiError(error.code, error.message)
            : new ApiError('InternalError', 'The emulator failed to handle the request.');
      record.code = apiError.code;
      send({ Error: { Code: apiError.code, Message: apiError.message } });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const endpoint = `${address}:${port}`;

  return {
    endpoint,
    url: `http://${endpoint}`,
    port,
    calls: (action) => callRecords.filter((call) => action === undefined || call.action === action).length,
    callLog: () => callRecords.map((call) => ({ ...call })),
    resetCalls: () => {
      callRecords.length = 0;
    },
    injectFault: (spec) => {
      faults.push({ ...spec, times: spec.times ?? 1 });
    },
    injectDelay: (spec) => {
      delays.push({ ...spec, times: spec.times ?? 1 });
    },
    clearFaults: () => {
      faults.length = 0;
      delays.length = 0;
    },
    isTokenValid: isValid,
    registryTokenRequests: (method) =>
      method ? registryTokenRequests[method] : registryTokenRequests.GET + registryTokenRequests.POST,
    listTokens: (registryId) =>
      [...tokens.values()]
        .filter((record) => registryId === undefined || record.registryId === registryId)
        .map(snapshot),
    addCredential: (credential) => {
      credentials.set(credential.secretId, credential);
    },
    addRegistry: (registry) => {
      registries.set(registry.registryId, registry);
    },
    addCluster: (cluster) => {
      clusters.set(cluster.clusterId, cluster);
    },
    setInternalEndpoints: (registryId, endpoints) => {
      internalEndpoints.set(registryId, endpoints);
    },
    scf: scf.handle,
    stop: async () => {
      await scf.handle.stop();
      await new Promise<void>((resolve, reject) => {
        // Release slowed requests so their sockets can be torn down instead of keeping the process alive.
        for (const sleeper of sleepers) {
          clearTimeout(sleeper.timer);
          sleeper.resolve();
        }
        sleepers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
