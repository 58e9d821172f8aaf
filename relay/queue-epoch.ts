import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { describeError } from '../shared/errors.js';
import type { RedisClient } from '../shared/redis-connection.js';
import { withTimeout } from '../shared/timeout.js';

// A queue that loses its contents says nothing: a Redis without persistence that restarts (or is flushed)
// comes back empty and answers as if all were well. The relay only notices a loss when a write fails, and an
// idle relay writes nothing, so the jobs it handed over (new namespaces, a rotation) would wait for the next
// periodic resync (10 minutes). So the relay keeps a marker key of its own in the queue's Redis and looks at
// it every few seconds: when it is gone, so is everything that was queued, and the relay resyncs at once.
//
// A loss can also be partial and leave the marker in place: replication is asynchronous, so when a primary
// dies and its replica takes over (Redis Cluster, Sentinel, a managed failover), or a server with persistence
// restarts, the writes acknowledged in its last moments may be gone — a job the relay handed over just then
// vanishes, and the relay believes it delivered. So the same check (one script, routed to the server holding
// the marker and the queue's slot) also reads that server's run_id: when another process answers for the
// queue than last time, the relay resyncs too. Converged namespaces cost a resync no writes.

export interface QueueEpochOptions {
  queue: Queue;
  /** Key of the marker, under the queue's prefix (so that it lives in the queue's Redis Cluster slot). */
  key: string;
  checkEveryMs: number;
  log: Logger;
  /** The queue's contents were lost (marker gone): resync. */
  onLost: () => void;
  /** Counts each loss (metric). */
  countLoss: () => void;
  /** Counts each change of the server answering for the queue (failover, restart) (metric). */
  countServerChange?: () => void;
}

/** SET NX the marker and return whether it was absent, and the run_id of the server that holds it. */
const MARK = `
local set = redis.call('SET', KEYS[1], ARGV[1], 'NX')
local id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
return { set and 1 or 0, id }
`;

/** Redis answered, and refused the script itself (a proxy that allows no INFO in scripts, say). */
function refusedScript(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.name === 'ReplyError' &&
    !/^(CLUSTERDOWN|TRYAGAIN|LOADING|MOVED|ASK|BUSY|MASTERDOWN|READONLY|NOREPLICAS)/.test(error.message)
  );
}

export function queueEpochKey(prefix: string, clusterId: string): string {
  return `${prefix}:relay-epoch:${clusterId}`;
}

export class QueueEpoch {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private failingSince: number | undefined;
  private known = false;
  private serverId: string | undefined;
  private scriptRefused = false;

  constructor(private readonly opts: QueueEpochOptions) {}

  /** False while Redis does not answer the check (for /readyz). */
  get healthy(): boolean {
    return this.failingSince === undefined;
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.opts.checkEveryMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One round: set the marker if absent; its absence after it was seen means the queue was lost. */
  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { set, serverId } = await withTimeout(
        this.mark(),
        Math.max(1000, this.opts.checkEveryMs),
        () => new Error('Redis did not answer'),
      );
      if (this.failingSince !== undefined) {
        this.opts.log.info(
          { downForMs: Date.now() - this.failingSince },
          'queue marker: Redis reachable again',
        );
        this.failingSince = undefined;
      }
      if (set && this.known) {
        this.opts.countLoss();
        this.opts.log.warn(
          { marker: this.opts.key },
          'queue state lost (Redis restarted empty or was flushed): resyncing every CR now',
        );
        this.opts.onLost();
      } else if (serverId && this.serverId && serverId !== this.serverId) {
        this.opts.countServerChange?.();
        this.opts.log.warn(
          { marker: this.opts.key },
          'another Redis server answers for the queue (failover or restart): the last jobs handed to the old one may be lost, resyncing every CR now',
        );
        this.opts.onLost();
      }
      if (serverId) this.serverId = serverId;
      this.known = true;
    } catch (error) {
      if (this.failingSince === undefined) {
        this.failingSince = Date.now();
        this.opts.log.warn({ err: describeError(error) }, 'queue marker: Redis unreachable');
      }
    } finally {
      this.busy = false;
    }
  }

  /** NX: only when absent; `set` = it was absent (first start, or the queue's Redis lost everything). */
  private async mark(): Promise<{ set: boolean; serverId?: string }> {
    // The queue's own connection (ioredis: BullMQ's client type leaves out SET's NX form).
    const redis = (await this.opts.queue.backend.client) as unknown as RedisClient;
    const value = `${Date.now()}-${randomBytes(4).toString('hex')}`;
    if (!this.scriptRefused) {
      try {
        const [set, id] = (await redis.eval(MARK, 1, this.opts.key, value)) as [number, string];
        return { set: set === 1, ...(id ? { serverId: id } : {}) };
      } catch (error) {
        if (!refusedScript(error)) throw error;
        this.scriptRefused = true;
        this.opts.log.warn(
          { err: describeError(error) },
          'queue marker: this Redis refuses the marker script; a failover will be noticed at the next periodic resync only',
        );
      }
    }
    return { set: (await redis.set(this.opts.key, value, 'NX')) === 'OK' };
  }
}
