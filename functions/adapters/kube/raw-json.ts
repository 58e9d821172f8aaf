import https from 'node:https';
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import { TerminalError } from '../../../shared/errors.js';

/**
 * One GET of the API server, parsed with JSON.parse only (no client-node deserialization): for the large
 * cluster-wide lists (KubeCluster.rawList), where typed deserialization of 10,000+ objects blocks the event
 * loop for seconds. Failures are ApiExceptions, as client-node's, so api-call.ts classifies them alike.
 */
export async function getJson<T>(
  kc: KubeConfig,
  pathAndQuery: string,
  signal: AbortSignal | undefined,
): Promise<T> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new TerminalError('the kubeconfig has no current cluster');
  const opts: https.RequestOptions = {
    method: 'GET',
    headers: { Accept: 'application/json' },
    timeout: 60_000,
    ...(signal ? { signal: signal } : {}),
  };
  await kc.applyToHTTPSOptions(opts);
  return new Promise<T>((resolve, reject) => {
    const req = https.request(new URL(pathAndQuery, server), opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) {
          try {
            resolve(JSON.parse(body) as T);
          } catch (error) {
            reject(error);
          }
        } else reject(new ApiException(code, `HTTP ${code}`, body, {}));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${pathAndQuery} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
