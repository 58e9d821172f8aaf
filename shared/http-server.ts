import http from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The one health and metrics server of every long-running process (relay, webhook, functions worker):
 * /healthz (the process answers), /readyz (`ready()`: 503 with the reason while not ready), /metrics
 * (Prometheus), on `port` (0 = a free one).
 */
export async function serveHealthHttp(
  port: number,
  registry: Registry,
  ready: () => { ready: boolean; detail: string } = () => ({ ready: true, detail: 'ok' }),
): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    if (req.url === '/healthz') {
      res.end('ok');
    } else if (req.url === '/readyz') {
      const r = ready();
      res.statusCode = r.ready ? 200 : 503;
      res.end(r.detail);
    } else if (req.url === '/metrics') {
      res.setHeader('Content-Type', registry.contentType);
      res.end(await registry.metrics());
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  return server;
}
