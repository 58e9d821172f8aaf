import type { RedisClient } from '../../shared/redis-connection.js';
import type { FailedNamespace } from '../core/model.js';
import type { AuditEntry, AuditPort, FailureStorePort, TokenReportPort } from '../core/ports.js';

/** The audit stream's key; under the queue prefix so that a Redis Cluster keeps it in the queue's slot. */
export const auditStreamKey = (prefix: string) => `${prefix}:audit`;

/**
 * Appends one entry per processed job to a Redis Stream capped at about `maxLen` entries (XADD MAXLEN ~).
 * Entries hold keys, verbs and outcomes, never object contents or credentials.
 */
export class RedisAudit implements AuditPort {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly maxLen: number,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.redis.xadd(this.key, 'MAXLEN', '~', String(this.maxLen), '*', 'entry', JSON.stringify(entry));
  }
}

/** Namespaces whose last attempt failed, per CR: a Redis hash each, cleared as they recover. */
export class RedisFailureStore implements FailureStorePort {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(cluster: string, cr: string) {
    return `${this.prefix}:failures:${cluster}:${cr}`;
  }

  async record(cluster: string, cr: string, failure: FailedNamespace): Promise<void> {
    const key = this.key(cluster, cr);
    await this.redis
      .multi()
      .hset(key, failure.namespace, JSON.stringify(failure))
      .expire(key, 7 * 24 * 3600)
      .exec();
  }

  async clear(cluster: string, cr: string, namespace: string): Promise<void> {
    await this.redis.hdel(this.key(cluster, cr), namespace);
  }

  async list(cluster: string, cr: string): Promise<FailedNamespace[]> {
    const all = await this.redis.hgetall(this.key(cluster, cr));
    return Object.values(all)
      .map((v) => JSON.parse(v) as FailedNamespace)
      .sort((a, b) => a.namespace.localeCompare(b.namespace));
  }
}

/** The token refresher's last outcome per token key (`{error?, at}`), for the fleet view. Messages only. */
export class RedisTokenReports implements TokenReportPort {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private get key() {
    return `${this.prefix}:token-reports`;
  }

  async report(tokenKey: string, error: string | undefined): Promise<void> {
    await this.redis.hset(this.key, tokenKey, JSON.stringify({ error, at: new Date().toISOString() }));
  }

  /** Asks the next refresher run to rotate these token keys or registry ids (the CLI's `rotate`). */
  async requestRotation(targets: readonly string[]): Promise<void> {
    if (targets.length > 0) await this.redis.sadd(`${this.prefix}:token-rotations`, ...targets);
  }

  async rotationRequests(): Promise<string[]> {
    return this.redis.smembers(`${this.prefix}:token-rotations`);
  }

  async clearRotationRequests(targets: readonly string[]): Promise<void> {
    if (targets.length > 0) await this.redis.srem(`${this.prefix}:token-rotations`, ...targets);
  }

  private get idleKey() {
    return `${this.prefix}:token-idle`;
  }

  async noteIdle(fingerprint: string | undefined, ttlMs: number): Promise<void> {
    if (fingerprint === undefined) await this.redis.del(this.idleKey);
    else await this.redis.set(this.idleKey, fingerprint, 'PX', ttlMs);
  }

  /** A run found nothing to do for this fleet (`fingerprint`) less than its ttl ago. */
  async isIdle(fingerprint: string): Promise<boolean> {
    return (await this.redis.get(this.idleKey)) === fingerprint;
  }

  async all(): Promise<Record<string, { error?: string; at: string }>> {
    const raw = await this.redis.hgetall(this.key);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v)]));
  }
}
