import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { describeError } from '../shared/errors.js';
import { withTimeout } from '../shared/timeout.js';

// A queue that loses its contents says nothing: a Redis without persistence that restarts (or is flushed)
// comes back empty and answers as if all were well. The relay only notices a loss when a write fails, and an
// idle relay writes nothing, so the jobs it handed over (new namespaces, a rotation) would wait for the next
// periodic resync (10 minutes). So the relay keeps a marker key of its own in the queue's Redis and looks at
// it every few seconds: when it is gone, so is everything that was queued, and the relay resyncs at once.

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
}

export function queueEpochKey(prefix: string, clusterId: string): string {
  return `${prefix}:relay-epoch:${clusterId}`;
}

export class QueueEpoch {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private failingSince: number | undefined;
  private known = false;

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
      // The queue's own connection (ioredis: BullMQ's client type leaves out SET's NX form).
      const redis = (await this.opts.queue.backend.client) as unknown as Redis;
      const value = `${Date.now()}-${randomBytes(4).toString('hex')}`;
      // NX: only when absent. 'OK' = it was absent (first start, or the queue's Redis lost everything).
      const set = await withTimeout(
        redis.set(this.opts.key, value, 'NX'),
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
      if (set === 'OK' && this.known) {
        this.opts.countLoss();
        this.opts.log.warn(
          { marker: this.opts.key },
          'queue state lost (Redis restarted empty or was flushed): resyncing every CR now',
        );
        this.opts.onLost();
      }
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
}
