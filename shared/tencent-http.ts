import http from 'node:http';
import https from 'node:https';

export interface TencentEndpoint {
  /** API host (`host[:port]`, no scheme): a product's `*.tencentcloudapi.com`, or an emulator's `127.0.0.1:PORT`. */
  endpoint: string;
  protocol: 'https://' | 'http://';
  timeoutSeconds: number;
}

const isLoopback = (endpoint: string) => /^(127\.|localhost(:|$)|\[::1\])/.test(endpoint);

/**
 * tencentcloud-sdk-nodejs's `profile.httpProfile` for an endpoint. The SDK routes through $http_proxy
 * unless it is given an agent: a loopback endpoint (the emulator) gets its own keep-alive agent, so it is
 * reached directly.
 */
export function tencentHttpProfile(target: TencentEndpoint) {
  const agent = isLoopback(target.endpoint)
    ? new (target.protocol === 'http://' ? http.Agent : https.Agent)({ keepAlive: true })
    : undefined;
  return {
    endpoint: target.endpoint,
    protocol: target.protocol,
    reqTimeout: target.timeoutSeconds,
    ...(agent ? { agent } : {}),
  };
}
