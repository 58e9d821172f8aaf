import { type ConnectionOptions, Queue } from 'bullmq';
import {
  dedupIdOf,
  type Enqueue,
  type JobData,
  JobData as JobDataSchema,
  QUEUE_NAME,
} from './contracts/jobs.js';
import {
  type ClientBehaviour,
  createRedisClient,
  type RedisClient,
  requireHashTag,
} from './redis-connection.js';

/**
 * A Redis connection for BullMQ (one server or a cluster: shared/redis-connection.ts). `maxRetriesPerRequest:
 * null` is what BullMQ requires of workers and what keeps producers waiting through a Redis outage instead of
 * failing each command after 20 tries.
 */
export function connectRedis(url: string, extra: ClientBehaviour = {}): RedisClient {
  const redis = createRedisClient(url, { maxRetriesPerRequest: null, ...extra });
  // Connection errors surface through the commands that fail (and are retried or reported there); without
  // a listener ioredis would also print every reconnect attempt during an outage.
  redis.on('error', () => {});
  return redis;
}

export interface QueueSettings {
  /** BullMQ key prefix; braces make every key of the queue hash to one Redis Cluster slot. */
  prefix: string;
  attempts: number;
  backoffMs: number;
}

export function openQueue(connection: ConnectionOptions, settings: QueueSettings): Queue {
  if ((connection as { isCluster?: boolean }).isCluster === true) requireHashTag(settings.prefix);
  return new Queue(QUEUE_NAME, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: {
      attempts: settings.attempts,
      backoff: { type: 'exponential', delay: settings.backoffMs, jitter: 0.5 },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  });
}

/**
 * Adds level-triggered jobs, deduplicated per key with `keepLastIfActive`: an add for a key whose job is
 * waiting merges into it; an add while it runs makes exactly one more run afterwards. No update is lost
 * and a busy key never holds more than two jobs.
 */
export async function enqueueJobs(queue: Queue, items: Enqueue[], now: number = Date.now()): Promise<void> {
  if (items.length === 0) return;
  await queue.addBulk(
    items.map((item) => {
      const data: JobData = JobDataSchema.parse({
        v: 1,
        key: item.key,
        trigger: item.trigger,
        at: item.at ?? now,
      });
      return {
        name: item.key.kind,
        data,
        opts: {
          deduplication: { id: dedupIdOf(item.key), keepLastIfActive: true },
          ...(item.delayMs ? { delay: item.delayMs } : {}),
        },
      };
    }),
  );
}
