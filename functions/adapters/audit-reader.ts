import { z } from 'zod';
import { duplicateClient, type RedisClient } from '../../shared/redis-connection.js';
import { AuditEntry } from '../core/ports.js';

export const AuditFilter = z.object({
  cluster: z.string().optional(),
  namespace: z.string().optional(),
  cr: z.string().optional(),
  outcome: z.enum(['success', 'retry', 'failed']).optional(),
  /** Epoch ms: entries at or after it. */
  since: z.number().int().nonnegative().optional(),
});
export type AuditFilter = z.infer<typeof AuditFilter>;

export function matchesAudit(entry: AuditEntry, filter: AuditFilter): boolean {
  return (
    (filter.cluster === undefined || entry.cluster === filter.cluster) &&
    (filter.namespace === undefined || entry.namespace === filter.namespace) &&
    (filter.cr === undefined || (entry.cr ?? []).includes(filter.cr)) &&
    (filter.outcome === undefined || entry.outcome === filter.outcome)
  );
}

/** Parses `10m`, `2h`, `1d` (relative to now) or an ISO time into epoch ms. */
export function parseSince(value: string, now = Date.now()): number {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new Error(`--since: "${value}" is neither a duration like 10m/2h/1d nor an ISO time`);
  return t;
}

const decode = (fields: string[]): AuditEntry | undefined => {
  const raw = fields[fields.indexOf('entry') + 1];
  const parsed = raw === undefined ? undefined : AuditEntry.safeParse(JSON.parse(raw));
  return parsed?.success ? parsed.data : undefined;
};

/**
 * Lists the newest `limit` audit entries matching the filter, oldest of them first (as `tail` shows a log):
 * the stream is read backwards from its end, 500 entries at a time, down to `since` at most.
 */
export async function listAudit(
  redis: RedisClient,
  key: string,
  filter: AuditFilter,
  limit = 1000,
): Promise<AuditEntry[]> {
  const stop = filter.since === undefined ? '-' : String(filter.since);
  const newestFirst: AuditEntry[] = [];
  let cursor = '+';
  while (newestFirst.length < limit) {
    const batch = await redis.xrevrange(key, cursor, stop, 'COUNT', '500');
    for (const [id, fields] of batch) {
      const entry = decode(fields);
      if (entry && matchesAudit(entry, filter)) newestFirst.push(entry);
      cursor = `(${id}`;
      if (newestFirst.length >= limit) break;
    }
    if (batch.length < 500) break;
  }
  return newestFirst.reverse();
}

/** Follows the stream from now on (XREAD BLOCK), yielding matching entries until the signal aborts. */
export async function* followAudit(
  redis: RedisClient,
  key: string,
  filter: AuditFilter,
  signal: AbortSignal,
): AsyncGenerator<AuditEntry> {
  let last = '$';
  const reader = duplicateClient(redis);
  reader.on('error', () => {});
  try {
    while (!signal.aborted) {
      const res = await reader.xread('BLOCK', '1000', 'STREAMS', key, last);
      for (const [, entries] of res ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          const entry = decode(fields);
          if (entry && matchesAudit(entry, filter)) yield entry;
        }
      }
    }
  } finally {
    reader.disconnect();
  }
}
