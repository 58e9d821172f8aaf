// TC3-HMAC-SHA256, the signature of Tencent Cloud API 3.0, as pure functions.
// Matches tencentcloud-sdk-nodejs 4.1 (common/sign.js `sign3`, common/http/http_connection.js): for a JSON POST it
// signs `content-type` (the header value it sends, `application/json` without a charset) and `host` (the URL's
// hostname, i.e. WITHOUT the port, although the Host header it sends carries the port), path `/`, empty query.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const TC3_ALGORITHM = 'TC3-HMAC-SHA256';
/** What the SDK sends (and signs) for a JSON POST unless a caller overrides Content-Type. */
export const JSON_CONTENT_TYPE = 'application/json';
/** The service accepts a request only while its X-TC-Timestamp is this close to the server clock. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

export interface CanonicalRequestInput {
  method?: string;
  /** URL path; `/` for API 3.0. */
  path?: string;
  /** Raw query string without `?`; empty for POST. */
  query?: string;
  /** Header name (any case) → value, for at least every name in `signedHeaders`. */
  headers: Record<string, string>;
  /** Lower-case names, in the order of the SignedHeaders field (`content-type;host` for the SDK). */
  signedHeaders: readonly string[];
  body: string | Buffer;
}

export interface SignInput {
  secretId: string;
  secretKey: string;
  /** Product, e.g. `tcr`; it is part of the credential scope and of the key derivation. */
  service: string;
  /** Seconds since the epoch (X-TC-Timestamp). The scope date is its UTC day. */
  timestamp: number;
  /** Host as sent (a port is allowed; it is not signed). */
  host: string;
  body: string | Buffer;
  contentType?: string;
  method?: string;
  path?: string;
  query?: string;
}

export interface ParsedAuthorization {
  algorithm: string;
  secretId: string;
  date: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

export function hashHex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `YYYY-MM-DD` of a Unix timestamp in UTC, the date the credential scope must carry. */
export function formatScopeDate(timestamp: number): string {
  return new Date(timestamp * 1000).toISOString().slice(0, 10);
}

/** The signed host: the hostname without a port, as `new URL(...).hostname` gives it (IPv6 keeps brackets). */
export function stripPort(host: string): string {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return host;
  }
}

/** Header values are trimmed and lower-cased before signing, as the API documents (the SDK's are already). */
function normalizeHeaderValue(value: string): string {
  return value.trim().toLowerCase();
}

export function buildCanonicalRequest(input: CanonicalRequestInput): string {
  const byName = new Map(Object.entries(input.headers).map(([name, value]) => [name.toLowerCase(), value]));
  const canonicalHeaders = input.signedHeaders
    .map((name) => {
      const raw = byName.get(name) ?? '';
      const value = name === 'host' ? stripPort(raw.trim()) : raw;
      return `${name}:${normalizeHeaderValue(value)}\n`;
    })
    .join('');
  return [
    (input.method ?? 'POST').toUpperCase(),
    input.path ?? '/',
    input.query ?? '',
    canonicalHeaders,
    input.signedHeaders.join(';'),
    hashHex(input.body),
  ].join('\n');
}

export function buildStringToSign(timestamp: number, service: string, canonicalRequest: string): string {
  const scope = `${formatScopeDate(timestamp)}/${service}/tc3_request`;
  return [TC3_ALGORITHM, String(timestamp), scope, hashHex(canonicalRequest)].join('\n');
}

export function deriveSigningKey(secretKey: string, date: string, service: string): Buffer {
  const dateKey = hmac(`TC3${secretKey}`, date);
  const serviceKey = hmac(dateKey, service);
  return hmac(serviceKey, 'tc3_request');
}

/** Hex signature of a canonical request. The date comes from the timestamp, never from a client's claim. */
export function computeSignature(
  secretKey: string,
  service: string,
  timestamp: number,
  canonicalRequest: string,
): string {
  const key = deriveSigningKey(secretKey, formatScopeDate(timestamp), service);
  return createHmac('sha256', key)
    .update(buildStringToSign(timestamp, service, canonicalRequest), 'utf8')
    .digest('hex');
}

export function formatAuthorization(
  secretId: string,
  timestamp: number,
  service: string,
  signedHeaders: readonly string[],
  signature: string,
): string {
  const scope = `${secretId}/${formatScopeDate(timestamp)}/${service}/tc3_request`;
  return `${TC3_ALGORITHM} Credential=${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
}

/** The Authorization header the SDK would send for these inputs. */
export function signAuthorization(input: SignInput): string {
  const signedHeaders = ['content-type', 'host'];
  const canonical = buildCanonicalRequest({
    method: input.method ?? 'POST',
    path: input.path ?? '/',
    query: input.query ?? '',
    headers: { 'content-type': input.contentType ?? JSON_CONTENT_TYPE, host: input.host },
    signedHeaders,
    body: input.body,
  });
  const signature = computeSignature(input.secretKey, input.service, input.timestamp, canonical);
  return formatAuthorization(input.secretId, input.timestamp, input.service, signedHeaders, signature);
}

export interface SignedRequestInput extends SignInput {
  action: string;
  version: string;
  region?: string;
  /** Temporary credentials' session token (X-TC-Token). */
  token?: string;
}

/** Every header of a signed API 3.0 JSON POST, for callers that build requests without the SDK. */
export function buildSignedHeaders(input: SignedRequestInput): Record<string, string> {
  const headers: Record<string, string> = {
    Authorization: signAuthorization(input),
    'Content-Type': input.contentType ?? JSON_CONTENT_TYPE,
    Host: input.host,
    'X-TC-Action': input.action,
    'X-TC-Version': input.version,
    'X-TC-Timestamp': String(input.timestamp),
  };
  if (input.region !== undefined) headers['X-TC-Region'] = input.region;
  if (input.token !== undefined) headers['X-TC-Token'] = input.token;
  return headers;
}

const AUTHORIZATION_PATTERN =
  /^(\S+) +Credential=([^/\s,]+)\/(\d{4}-\d{2}-\d{2})\/([a-z0-9-]+)\/tc3_request *, *SignedHeaders=([a-z0-9;-]+) *, *Signature=([0-9a-f]{64})$/;

/** Splits `TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=..., Signature=...`. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | undefined {
  if (header === undefined) return undefined;
  const match = AUTHORIZATION_PATTERN.exec(header.trim());
  if (match === null) return undefined;
  const [, algorithm, secretId, date, service, signedHeaders, signature] = match;
  if (!algorithm || !secretId || !date || !service || !signedHeaders || !signature) return undefined;
  return { algorithm, secretId, date, service, signedHeaders: signedHeaders.split(';'), signature };
}

/** Constant-time comparison of two hex signatures, so a verifier does not leak how many characters matched. */
export function signaturesEqual(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface VerifyInput {
  authorization: ParsedAuthorization;
  secretKey: string;
  timestamp: number;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** True when the request's signature is what `secretKey` yields for the request as received. */
export function verifySignature(input: VerifyInput): boolean {
  const canonical = buildCanonicalRequest({
    method: input.method,
    path: input.path,
    query: input.query,
    headers: input.headers,
    signedHeaders: input.authorization.signedHeaders,
    body: input.body,
  });
  const expected = computeSignature(input.secretKey, input.authorization.service, input.timestamp, canonical);
  return signaturesEqual(expected, input.authorization.signature);
}
