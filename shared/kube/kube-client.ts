import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { KubeTarget } from './kube-target.js';
import type { ListWatch, Query } from './list-watch.js';
import { decodeStatus } from './protobuf.js';
import {
  type ListPage,
  type WatchEventType,
  WatchExpiredError,
  type WatchedObject,
} from './resource-watcher.js';

// A small Kubernetes transport: JSON requests, paged LIST and WATCH (JSON lines) over one keep-alive agent.
// It is what the relay uses instead of @kubernetes/client-node, whose KubeConfig alone loads every generated
// API and model (≈ 70 MiB of RSS); it is a transport, not an engine: no caches, no retries, no informers
// (ResourceWatcher is the one watch mechanism and runs over the ListWatch port this implements).
// Credentials (the token, the client key) go into headers and the agent only: never into errors or logs.

/** How to reach the API server for one request: its URL and the agent and headers carrying credentials. */
export interface KubeConnection {
  /** `https://host:port`, no trailing slash. */
  server: string;
  prepare(): Promise<Prepared> | Prepared;
}
export interface Prepared {
  agent: http.Agent | undefined;
  headers: Record<string, string | string[]>;
}

/** One keep-alive agent for a target: every request reuses its TLS connections. */
export function connectionOf(target: KubeTarget): KubeConnection {
  const agent = new https.Agent({
    keepAlive: true,
    ca: target.ca,
    cert: target.cert,
    key: target.key,
    servername: target.tlsServerName,
  });
  const fixed: Record<string, string | string[]> = {};
  if (target.impersonate?.user) fixed['Impersonate-User'] = target.impersonate.user;
  if (target.impersonate?.groups?.length) fixed['Impersonate-Group'] = target.impersonate.groups;
  if (target.impersonate?.uid) fixed['Impersonate-Uid'] = target.impersonate.uid;
  return {
    server: target.server,
    prepare: () => {
      const token = target.token?.();
      return { agent, headers: token ? { ...fixed, Authorization: `Bearer ${token}` } : fixed };
    },
  };
}

/** A Kubernetes Status (the body of an error answer, and of a watch's ERROR event). */
export const KubeStatus = z.looseObject({
  kind: z.string().optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
});

/**
 * An API answer other than 2xx: the HTTP status (`code`, as client-node's ApiException has it), the Status
 * reason and message. The message names the method and path (no query: continue tokens are long), never a
 * header or a body we sent.
 */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly method: string,
    readonly path: string,
    detail: string,
  ) {
    super(`${method} ${path}: ${code} ${reason}${detail ? `: ${detail}` : ''}`);
  }

  get status(): number {
    return this.code;
  }
}

/**
 * Maps an error answer to a KubeApiError, with the Status message when the body is one: JSON, or protobuf when
 * the request asked for protobuf (the API server answers errors in the encoding asked for).
 */
export function apiErrorOf(
  code: number,
  statusText: string,
  body: string | Buffer,
  method: string,
  path: string,
): KubeApiError {
  let parsed: { reason?: string | undefined; message?: string | undefined } | undefined = Buffer.isBuffer(
    body,
  )
    ? decodeStatus(body)
    : undefined;
  if (!parsed) {
    try {
      const r = KubeStatus.safeParse(JSON.parse(body.toString()));
      if (r.success && r.data.kind === 'Status') parsed = r.data;
    } catch {
      // not JSON (a proxy's page): only the status line is reported
    }
  }
  return new KubeApiError(
    code,
    parsed?.reason || statusText || http.STATUS_CODES[code] || 'Error',
    method,
    path,
    parsed?.message ?? '',
  );
}

const ListBody = z.object({
  items: z.array(z.unknown()).nullable(),
  metadata: z.object({ resourceVersion: z.string().optional(), continue: z.string().optional() }),
});

const WatchEvent = z.object({
  type: z.string(),
  object: z.looseObject({}),
});

const WATCH_TYPES = new Set<string>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);

export interface RequestOptions<T> {
  query?: Query | undefined;
  /** Sent as JSON; a Buffer is sent as it is (with its `contentType`). */
  body?: unknown;
  /** Default application/json. */
  accept?: string | undefined;
  /** Default application/json; PATCH defaults to application/merge-patch+json. */
  contentType?: string | undefined;
  /** Parses the answer (zod at the boundary); without it the parsed JSON is returned as unknown. */
  schema?: z.ZodType<T> | undefined;
  signal: AbortSignal;
}

/** A path with its query, ready for a request. */
function urlOf(server: string, path: string, query: Query | undefined): URL {
  const url = new URL(server + path);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}

function readBody(res: IncomingMessage): Promise<string> {
  return readBytes(res).then((b) => b.toString('utf8'));
}

function readBytes(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    res.on('error', reject);
    res.on('close', () => {
      if (!ended) reject(new Error('connection closed before the answer ended'));
    });
  });
}

export class KubeClient implements ListWatch {
  constructor(private readonly connection: KubeConnection) {}

  get server(): string {
    return this.connection.server;
  }

  get<T = unknown>(path: string, opts: Omit<RequestOptions<T>, 'body'>): Promise<T> {
    return this.request('GET', path, opts);
  }

  post<T = unknown>(path: string, body: unknown, opts: Omit<RequestOptions<T>, 'body'>): Promise<T> {
    return this.request('POST', path, { ...opts, body });
  }

  put<T = unknown>(path: string, body: unknown, opts: Omit<RequestOptions<T>, 'body'>): Promise<T> {
    return this.request('PUT', path, { ...opts, body });
  }

  patch<T = unknown>(path: string, body: unknown, opts: Omit<RequestOptions<T>, 'body'>): Promise<T> {
    return this.request('PATCH', path, { contentType: 'application/merge-patch+json', ...opts, body });
  }

  delete<T = unknown>(path: string, opts: Omit<RequestOptions<T>, 'body'>): Promise<T> {
    return this.request('DELETE', path, opts);
  }

  /** One JSON request; a non-2xx answer rejects with KubeApiError, an unreadable answer with an Error. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions<T>): Promise<T> {
    const res = await this.open(method, path, opts);
    const text = await readBody(res);
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw apiErrorOf(code, res.statusMessage ?? '', text, method, path);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new Error(`${method} ${path}: the answer is not JSON (${code})`);
    }
    if (!opts.schema) return json as T;
    const parsed = opts.schema.safeParse(json);
    if (!parsed.success)
      throw new Error(
        `${method} ${path}: unexpected answer (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
      );
    return parsed.data;
  }

  /** One request whose answer is kept as bytes (a protobuf answer); a non-2xx answer rejects as `request`. */
  async requestBytes(
    method: string,
    path: string,
    opts: Omit<RequestOptions<unknown>, 'schema'>,
  ): Promise<Buffer> {
    const res = await this.open(method, path, opts);
    const bytes = await readBytes(res);
    const code = res.statusCode ?? 0;
    if (code >= 200 && code < 300) return bytes;
    throw apiErrorOf(code, res.statusMessage ?? '', bytes, method, path);
  }

  async listPage(path: string, query: Query, signal: AbortSignal): Promise<ListPage> {
    const list = await this.get(path, { query, signal, schema: ListBody });
    return {
      items: (list.items ?? []) as WatchedObject[],
      resourceVersion: list.metadata.resourceVersion ?? '',
      continueToken: list.metadata.continue || undefined,
    };
  }

  async watch(
    path: string,
    query: Query,
    onEvent: (type: WatchEventType, obj: WatchedObject) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let res: IncomingMessage;
    try {
      res = await this.open('GET', path, { query: { ...query, watch: 'true' }, signal });
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    const code = res.statusCode ?? 0;
    if (code !== 200) {
      const text = await readBody(res).catch(() => '');
      if (code === 410) throw new WatchExpiredError('watch expired (410 Gone)');
      throw apiErrorOf(code, res.statusMessage ?? '', text, 'WATCH', path);
    }
    return new Promise<void>((resolve, reject) => {
      let pending = '';
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (error !== undefined) {
          res.destroy();
          reject(error);
        } else resolve();
      };
      const onAbort = () => {
        res.destroy();
        finish();
      };
      const onLine = (line: string) => {
        let event: z.infer<typeof WatchEvent>;
        try {
          event = WatchEvent.parse(JSON.parse(line));
        } catch {
          return finish(new Error(`watch ${path}: an event is not a watch event`));
        }
        if (event.type === 'ERROR') {
          const status = KubeStatus.safeParse(event.object);
          const c = status.success ? status.data.code : undefined;
          return finish(
            c === 410
              ? new WatchExpiredError('watch expired (410 Gone)')
              : new Error(
                  `watch ${path}: error ${c ?? ''}: ${(status.success && status.data.message) || 'unknown'}`,
                ),
          );
        }
        if (!WATCH_TYPES.has(event.type)) return;
        try {
          onEvent(event.type as WatchEventType, event.object as WatchedObject);
        } catch (error) {
          finish(error);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) return onAbort();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        pending += chunk;
        let start = 0;
        for (let nl = pending.indexOf('\n'); nl >= 0 && !settled; nl = pending.indexOf('\n', start)) {
          const line = pending.slice(start, nl);
          start = nl + 1;
          if (line.trim()) onLine(line);
        }
        pending = pending.slice(start);
      });
      // The server ends a watch at its timeoutSeconds; a connection that drops ends it too (the watcher
      // resumes from the last resourceVersion, and lists again if that fails).
      res.on('end', () => finish());
      res.on('close', () => finish());
      res.on('error', () => finish());
    });
  }

  private async open(
    method: string,
    path: string,
    opts: Omit<RequestOptions<unknown>, 'schema'>,
  ): Promise<IncomingMessage> {
    const { agent, headers } = await this.connection.prepare();
    const url = urlOf(this.connection.server, path, opts.query);
    const body =
      opts.body === undefined
        ? undefined
        : Buffer.isBuffer(opts.body)
          ? opts.body
          : JSON.stringify(opts.body);
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, {
        method,
        agent,
        signal: opts.signal,
        headers: {
          ...headers,
          Accept: opts.accept ?? 'application/json',
          'User-Agent': 'tcr-assistant',
          ...(body === undefined
            ? {}
            : {
                'Content-Type': opts.contentType ?? 'application/json',
                'Content-Length': Buffer.byteLength(body),
              }),
        },
      });
      req.on('response', resolve);
      req.on('error', (error: Error & { code?: string }) => {
        if (error.name === 'AbortError') reject(error);
        // Node's messages name the address and the failure (ECONNREFUSED 127.0.0.1:6443), never a header.
        else reject(new Error(`${method} ${path}: ${error.message}`));
      });
      req.end(body);
    });
  }
}
