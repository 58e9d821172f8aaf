import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectionAt } from '../../../shared/kube/collections.js';
import { apiErrorOf, KubeApiError, KubeClient } from '../../../shared/kube/kube-client.js';
import { encodeSecret, PROTOBUF } from '../../../shared/kube/protobuf.js';
import { type WatchEventType, WatchExpiredError } from '../../../shared/kube/resource-watcher.js';

// The transport against a stand-in API server on loopback (plain HTTP: the connection port lets the test
// skip TLS; what is tested is the request, the mapping of answers and the watch stream).

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let server: http.Server;
let client: KubeClient;
const TOKEN = 'the-bearer-token-value';
const seen: {
  method?: string;
  url?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  raw: Buffer;
}[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: raw.toString('utf8'), raw });
      handler(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true });
  client = new KubeClient({
    server: `http://127.0.0.1:${port}`,
    prepare: () => ({ agent, headers: { Authorization: `Bearer ${TOKEN}`, 'Impersonate-User': 'me' } }),
  });
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const json = (res: http.ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};
const signal = () => AbortSignal.timeout(5000);
/** What a request rejected with (a request that succeeds fails the test). */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('the request succeeded');
    },
    (e: unknown) => e as KubeApiError,
  );

describe('KubeClient requests', () => {
  it('sends JSON with its headers and returns the parsed answer', async () => {
    handler = (req, res) => json(res, 201, { ok: true, method: req.method });
    const out = await client.post('/api/v1/namespaces/a/things', { a: 1 }, { signal: signal() });
    expect(out).toEqual({ ok: true, method: 'POST' });
    const last = seen.at(-1);
    expect(last?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(last?.headers['impersonate-user']).toBe('me');
    expect(last?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(last?.body ?? '')).toEqual({ a: 1 });
    await client.patch('/x', { b: 2 }, { signal: signal() });
    expect(seen.at(-1)?.headers['content-type']).toBe('application/merge-patch+json');
  });

  it('maps an error answer to its status code and the Status message, never the credentials', async () => {
    handler = (_req, res) =>
      json(res, 409, {
        kind: 'Status',
        status: 'Failure',
        reason: 'Conflict',
        message: 'Operation cannot be fulfilled on leases "l": the object has been modified',
        code: 409,
      });
    const error = await failure(
      client.put('/apis/x/leases/l', { token: TOKEN }, { query: { q: TOKEN }, signal: signal() }),
    );
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error.code).toBe(409);
    expect(error.status).toBe(409);
    expect(error.reason).toBe('Conflict');
    expect(error.message).toBe(
      'PUT /apis/x/leases/l: 409 Conflict: Operation cannot be fulfilled on leases "l": the object has been modified',
    );
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain(TOKEN);
  });

  it('maps a non-Status error body to the status line only', async () => {
    handler = (_req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end(`<html>proxy error, Authorization: Bearer ${TOKEN}</html>`);
    };
    const error = await failure(client.get('/api/v1/namespaces', { signal: signal() }));
    expect(error.message).toBe('GET /api/v1/namespaces: 502 Bad Gateway');
    expect(
      apiErrorOf(403, '', '{"kind":"Status","reason":"Forbidden","message":"no"}', 'GET', '/p').message,
    ).toBe('GET /p: 403 Forbidden: no');
  });

  it('rejects an answer that does not match the schema, naming the field', async () => {
    handler = (_req, res) => json(res, 200, { items: 'no', metadata: {} });
    await expect(client.listPage('/api/v1/namespaces', {}, signal())).rejects.toThrow(
      /GET \/api\/v1\/namespaces: unexpected answer \(items: /,
    );
  });

  it('says which request a connection failure was, and an aborted request rejects as aborted', async () => {
    const dead = new KubeClient({
      server: 'http://127.0.0.1:1',
      prepare: () => ({ agent: undefined, headers: {} }),
    });
    await expect(dead.get('/api/v1/namespaces', { signal: signal() })).rejects.toThrow(
      /^GET \/api\/v1\/namespaces: connect ECONNREFUSED 127\.0\.0\.1:1$/,
    );
    handler = () => {}; // never answers
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    await expect(client.get('/slow', { signal: ctl.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('KubeClient byte requests (protobuf)', () => {
  const body = encodeSecret({ metadata: { name: 'x', namespace: 'a' }, data: { k: 'AAEC' } });
  const ld = (n: number, v: string | Buffer) => {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
    return Buffer.concat([Buffer.from([(n << 3) | 2, b.length]), b]);
  };
  const protoStatus = (code: number, reason: string, message: string) =>
    Buffer.concat([
      Buffer.from([0x6b, 0x38, 0x73, 0x00]),
      ld(1, Buffer.concat([ld(1, 'v1'), ld(2, 'Status')])),
      ld(
        2,
        Buffer.concat([
          ld(3, message),
          ld(4, reason),
          Buffer.from([6 << 3, (code & 0x7f) | 0x80, code >> 7]),
        ]),
      ),
    ]);

  it('sends the bytes as they are with their content type and accept, and returns the answer as bytes', async () => {
    handler = (_req, res) => {
      res.writeHead(201, { 'Content-Type': PROTOBUF });
      res.end(Buffer.from([0x6b, 0x38, 0x73, 0x00, 0xff]));
    };
    const out = await client.requestBytes('POST', '/api/v1/namespaces/a/secrets', {
      body,
      contentType: PROTOBUF,
      accept: PROTOBUF,
      query: { fieldManager: 'tcr-assistant' },
      signal: signal(),
    });
    expect([...out]).toEqual([0x6b, 0x38, 0x73, 0x00, 0xff]);
    const req = seen.at(-1)!;
    expect(req.raw.equals(body)).toBe(true);
    expect(req.headers['content-type']).toBe(PROTOBUF);
    expect(req.headers['content-length']).toBe(String(body.length));
    expect(req.headers.accept).toBe(PROTOBUF);
    expect(req.url).toBe('/api/v1/namespaces/a/secrets?fieldManager=tcr-assistant');
  });

  it('maps a protobuf Status error answer to its code, reason and message', async () => {
    handler = (_req, res) => {
      res.writeHead(403, { 'Content-Type': PROTOBUF });
      res.end(
        protoStatus(
          403,
          'Forbidden',
          'unable to create new content in namespace a because it is being terminated',
        ),
      );
    };
    const error = await failure(
      client.requestBytes('POST', '/api/v1/namespaces/a/secrets', {
        body,
        contentType: PROTOBUF,
        accept: PROTOBUF,
        signal: signal(),
      }),
    );
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error.code).toBe(403);
    expect(error.reason).toBe('Forbidden');
    expect(error.message).toBe(
      'POST /api/v1/namespaces/a/secrets: 403 Forbidden: unable to create new content in namespace a because it is being terminated',
    );
  });

  it('maps a JSON or plain error answer as `request` does', async () => {
    handler = (_req, res) =>
      json(res, 409, { kind: 'Status', code: 409, reason: 'Conflict', message: 'modified' });
    const conflict = await failure(
      client.requestBytes('PUT', '/p', { body, contentType: PROTOBUF, signal: signal() }),
    );
    expect(conflict.message).toBe('PUT /p: 409 Conflict: modified');
    handler = (_req, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    };
    const plain = await failure(
      client.requestBytes('PUT', '/p', { body, contentType: PROTOBUF, signal: signal() }),
    );
    expect(plain.code).toBe(502);
    expect(plain.message).toBe('PUT /p: 502 Bad Gateway');
  });
});

describe('KubeClient list and watch', () => {
  it('pages a list with limit and continue (the collection settings)', async () => {
    handler = (req, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      const token = url.searchParams.get('continue');
      json(res, 200, {
        items: [{ metadata: { name: token ? 'b' : 'a' } }],
        metadata: { resourceVersion: '7', ...(token ? {} : { continue: 'next' }) },
      });
    };
    const collection = collectionAt(client, '/api/v1/namespaces', { query: { labelSelector: 'x=y' } });
    const first = await collection.listPage(undefined, signal());
    expect(first).toEqual({
      items: [{ metadata: { name: 'a' } }],
      resourceVersion: '7',
      continueToken: 'next',
    });
    const second = await collection.listPage('next', signal());
    expect(second.continueToken).toBeUndefined();
    expect(seen.at(-1)?.url).toBe('/api/v1/namespaces?labelSelector=x%3Dy&limit=500&continue=next');
  });

  it('streams events split across chunks, bookmarks included, and resolves when the server ends the watch', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const lines = [
        { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } },
        { type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } },
        { type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: '4' } } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n');
      res.write(lines.slice(0, 20));
      setTimeout(() => res.end(`${lines.slice(20)}\n`), 20);
    };
    const events: [WatchEventType, string | undefined][] = [];
    await collectionAt(client, '/api/v1/namespaces').watch(
      '1',
      (type, obj) => events.push([type, obj.metadata?.resourceVersion]),
      signal(),
    );
    expect(events).toEqual([
      ['ADDED', '2'],
      ['BOOKMARK', '3'],
      ['DELETED', '4'],
    ]);
    const url = new URL(seen.at(-1)?.url ?? '', 'http://x');
    expect(url.searchParams.get('watch')).toBe('true');
    expect(url.searchParams.get('resourceVersion')).toBe('1');
    expect(url.searchParams.get('allowWatchBookmarks')).toBe('true');
    expect(Number(url.searchParams.get('timeoutSeconds'))).toBeGreaterThanOrEqual(300);
  });

  it('ends with WatchExpiredError on an ERROR 410 event and on a 410 answer; other errors name the watch', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } })}\n`,
      );
    };
    await expect(client.watch('/w', {}, () => {}, signal())).rejects.toBeInstanceOf(WatchExpiredError);
    handler = (_req, res) => json(res, 410, { kind: 'Status', code: 410, reason: 'Expired' });
    await expect(client.watch('/w', {}, () => {}, signal())).rejects.toBeInstanceOf(WatchExpiredError);
    handler = (_req, res) =>
      json(res, 403, { kind: 'Status', code: 403, reason: 'Forbidden', message: 'nope' });
    await expect(client.watch('/w', {}, () => {}, signal())).rejects.toThrow('WATCH /w: 403 Forbidden: nope');
    handler = (_req, res) => {
      res.writeHead(200);
      res.end('not json\n');
    };
    await expect(client.watch('/w', {}, () => {}, signal())).rejects.toThrow(
      'watch /w: an event is not a watch event',
    );
  });

  it('resolves at once when its signal aborts an open watch', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
    };
    const ctl = new AbortController();
    const events: string[] = [];
    const done = client.watch(
      '/w',
      {},
      (t) => {
        events.push(t);
        ctl.abort();
      },
      ctl.signal,
    );
    await expect(done).resolves.toBeUndefined();
    expect(events).toEqual(['ADDED']);
  });
});
