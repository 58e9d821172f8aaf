import type { ConnectionOptions } from 'bullmq';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

// One place that turns REDIS_URL into connections, for every component (relay, functions' worker, SCF, CLI):
//
//   redis://[user:password@]host:port[/db]            one server (or a proxy in front of a cluster)
//   rediss://...                                      the same over TLS
//   redis+cluster://[user:password@]host:port[,host:port...]   Redis Cluster: the listed nodes are seeds, the
//   rediss+cluster://...                              client learns the rest (and every failover) from them
//
// On a Redis Cluster every key a BullMQ script or a MULTI touches must hash to one slot: the queue prefix
// must carry a hash tag (the default `{tcr}` does), and every other key we keep (audit stream, failures,
// token reports, wake slots, markers) lives under that prefix, so they all share the queue's slot.

/** Every client type the code talks to: one server, or a cluster (same commands, routed by key slot). */
export type RedisClient = Redis | Cluster;

export type RedisTarget =
  | { mode: 'standalone'; url: string }
  | {
      mode: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
      tls: boolean;
    };

export const REDIS_URL_FORMS =
  'redis://host:port, rediss://host:port, or redis+cluster://host:port[,host:port...] (rediss+cluster:// with TLS)';

/** Parses REDIS_URL; a malformed one is refused with what is wrong (never echoing a password). */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') return { mode: 'standalone', url };
  if (scheme !== 'redis+cluster' && scheme !== 'rediss+cluster') {
    throw new Error(`REDIS_URL must look like ${REDIS_URL_FORMS}`);
  }
  const rest = url.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : '';
  const afterUser = at >= 0 ? rest.slice(at + 1) : rest;
  const hostList = afterUser.split(/[/?#]/, 1)[0] ?? '';
  const tail = afterUser.slice(hostList.length);
  if (tail !== '' && tail !== '/' && tail !== '/0') {
    throw new Error(
      'REDIS_URL: a Redis Cluster has only database 0 and takes no options in the URL (redis+cluster://host:port,host:port)',
    );
  }
  const nodes = hostList.split(',').map((entry, i) => {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+):(\d{1,5})$/i.exec(entry.trim());
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      throw new Error(`REDIS_URL: cluster node ${i + 1} ("${entry}") must be host:port`);
    }
    return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
  });
  const [user, ...pass] = userinfo === '' ? [] : userinfo.split(':');
  return {
    mode: 'cluster',
    nodes,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass.length > 0 ? { password: decodeURIComponent(pass.join(':')) } : {}),
    tls: scheme === 'rediss+cluster',
  };
}

export const isClusterUrl = (url: string) => parseRedisUrl(url).mode === 'cluster';

/** For zod: what is wrong with a REDIS_URL, or undefined. */
export function redisUrlProblem(url: string): string | undefined {
  try {
    parseRedisUrl(url);
    return undefined;
  } catch (error) {
    return (error as Error).message.replace(/^REDIS_URL:? /, '');
  }
}

/**
 * The hash tag Redis Cluster would hash keys under this prefix by (the text between the first `{` and the
 * next `}`, if not empty), or undefined when keys under it would spread over slots.
 */
export function hashTagOf(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  if (open < 0) return undefined;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

/** Refuses a queue prefix that cannot work on a Redis Cluster (BullMQ's scripts would fail with CROSSSLOT). */
export function requireHashTag(prefix: string): void {
  if (hashTagOf(prefix) === undefined) {
    throw new Error(
      `QUEUE_PREFIX "${prefix}" has no hash tag: on a Redis Cluster every key of the queue must hash to one slot; use braces, e.g. {tcr}`,
    );
  }
}

/** How a client behaves while Redis is unreachable (the same knobs for one server and for a cluster). */
export interface ClientBehaviour {
  /** null: a command waits through an outage (BullMQ workers need this); n: fails after n reconnections. */
  maxRetriesPerRequest?: number | null;
  /** false: commands fail at once while disconnected (the relay keeps its dirty keys itself). */
  enableOfflineQueue?: boolean;
  /** Delay before the next reconnection (null: give up). */
  retryStrategy?: (times: number) => number | null;
  lazyConnect?: boolean;
  connectTimeout?: number;
}

/**
 * A cluster client that rides out a failover: a command to a primary that died is retried (every 300 ms,
 * up to 40 times, 12 s in all) while the cluster promotes its replica, and the slot map is refreshed; so
 * the failover reads as a few seconds of latency, not as errors, unless it takes longer than that.
 */
function clusterOptions(
  target: Extract<RedisTarget, { mode: 'cluster' }>,
  b: ClientBehaviour,
): ClusterOptions {
  return {
    ...(b.enableOfflineQueue === undefined ? {} : { enableOfflineQueue: b.enableOfflineQueue }),
    ...(b.retryStrategy ? { clusterRetryStrategy: b.retryStrategy } : {}),
    ...(b.lazyConnect === undefined ? {} : { lazyConnect: b.lazyConnect }),
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 40,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
      ...(b.maxRetriesPerRequest === undefined ? {} : { maxRetriesPerRequest: b.maxRetriesPerRequest }),
      ...(b.connectTimeout === undefined ? {} : { connectTimeout: b.connectTimeout }),
    },
  };
}

/** A client for REDIS_URL: ioredis' Redis for one server, its Cluster for a cluster. */
export function createRedisClient(url: string, behaviour: ClientBehaviour = {}): RedisClient {
  const target = parseRedisUrl(url);
  if (target.mode === 'cluster') return new Cluster(target.nodes, clusterOptions(target, behaviour));
  const options: RedisOptions = {};
  if (behaviour.maxRetriesPerRequest !== undefined)
    options.maxRetriesPerRequest = behaviour.maxRetriesPerRequest;
  if (behaviour.enableOfflineQueue !== undefined) options.enableOfflineQueue = behaviour.enableOfflineQueue;
  if (behaviour.retryStrategy) options.retryStrategy = behaviour.retryStrategy;
  if (behaviour.lazyConnect !== undefined) options.lazyConnect = behaviour.lazyConnect;
  if (behaviour.connectTimeout !== undefined) options.connectTimeout = behaviour.connectTimeout;
  return new Redis(url, options);
}

/** Another client to the same Redis (e.g. for a blocking read that must not hold up the shared one). */
export function duplicateClient(client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}

/** What a BullMQ Worker is given: options for one server (BullMQ opens and closes its own connections), or a
 * cluster client that the caller owns and must `release` after closing the worker. */
export interface BullConnection {
  connection: ConnectionOptions;
  release(): void;
}

/** ioredis options from a redis:// or rediss:// URL, for BullMQ to open (and close) its own connections. */
function standaloneOptions(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/**
 * A connection for a BullMQ Worker. BullMQ cannot open a cluster client from options, so on a cluster it gets
 * one of ours (it duplicates it for its blocking connection, which it closes itself).
 */
export function bullConnection(url: string): BullConnection {
  if (!isClusterUrl(url)) return { connection: standaloneOptions(url), release: () => {} };
  const client = createRedisClient(url, { maxRetriesPerRequest: null }) as Cluster;
  // Errors reach BullMQ through the commands that fail; a reconnect attempt is not news.
  client.on('error', () => {});
  return { connection: client, release: () => client.disconnect() };
}
