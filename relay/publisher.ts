import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { Backoff } from '../shared/backoff.js';
import type { Enqueue } from '../shared/contracts/jobs.js';
import { dedupIdOf } from '../shared/contracts/jobs.js';
import { enqueueJobs } from '../shared/queue.js';
import { withTimeout } from '../shared/timeout.js';
import type { RelayMetrics } from './metrics.js';

export interface PublisherOptions {
  maxDirty: number;
  /**
   * Batching window: the first key that arrives schedules a flush this much later, so a burst goes to Redis in
   * a few writes. Nothing is scheduled while nothing is pending (an idle relay does not wake up).
   */
  flushIntervalMs: number;
  batchSize?: number;
  /** A write to Redis that takes longer counts as failed (the keys stay dirty and are retried). */
  writeTimeoutMs?: number;
  /**
   * Called when Redis accepts jobs again after failing: the relay then resyncs in full, since a Redis that
   * restarted without persistence has lost the jobs it held, and an overflow lost dirty keys.
   */
  onRecovered: () => void;
  /** Called after jobs were written (the SCF waker pokes the function then). Must not throw or block. */
  onEnqueued?: () => void;
}

/**
 * Hands jobs to Redis. Pending jobs are kept as a set of dirty keys (the latest trigger per key), so the
 * relay coalesces bursts and rides out a Redis outage with memory bounded by the number of keys, not
 * events. If even that bound is hit, it forgets the keys and asks for a full resync once Redis is back.
 */
export class Publisher {
  private readonly dirty = new Map<string, Enqueue>();
  private overflowed = false;
  private failingSince: number | undefined;
  /** Cancels the one pending flush, if any: set when keys are pending, cleared when it runs. */
  private timer: (() => void) | undefined;
  private started = false;
  private closed = false;
  private flushing: Promise<void> | undefined;
  /** Redis writes that failed in a row: the next try waits (full jitter, 100 ms doubling up to 5 s). */
  private readonly backoff = new Backoff({ baseMs: 100, capMs: 5000 });
  private nextTryAt = 0;
  /** When the last write began: the batching window counts from it, so a key after a quiet spell goes at once. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly queue: Queue,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
    private readonly opts: PublisherOptions,
  ) {}

  start(): void {
    this.started = true;
    this.schedule();
  }

  /**
   * Arms one flush: at once (setImmediate: after the I/O callbacks of this turn of the event loop, so keys
   * of the same watch chunk share it) when the last write began a batching window ago or more, else when that
   * window ends, or when the Redis backoff ends if that is later. A lone event is not delayed (a zero
   * setTimeout would hold it ~1 ms: Node's shortest timer); a burst still goes out one write per window.
   * Event-driven: called when keys arrive and after each flush (leftovers, or a failed write to retry), never
   * on a period.
   */
  private schedule(): void {
    if (!this.started || this.closed || this.timer || this.flushing) return;
    if (this.dirty.size === 0 && !this.overflowed) return;
    const now = Date.now();
    const delay = Math.max(0, this.lastFlushAt + this.opts.flushIntervalMs - now, this.nextTryAt - now);
    const run = () => {
      this.timer = undefined;
      void this.flush();
    };
    if (delay === 0) {
      const immediate = setImmediate(run);
      this.timer = () => clearImmediate(immediate);
    } else {
      const timeout = setTimeout(run, delay);
      this.timer = () => clearTimeout(timeout);
    }
  }

  add(items: Enqueue[]): void {
    for (const item of items) {
      const id = dedupIdOf(item.key);
      if (this.dirty.has(id)) this.metrics.coalesced.inc();
      this.dirty.delete(id);
      this.dirty.set(id, item);
    }
    if (this.dirty.size > this.opts.maxDirty) {
      this.log.warn(
        { keys: this.dirty.size },
        'too many pending keys while Redis is unreachable: dropping them, full resync follows',
      );
      this.dirty.clear();
      this.overflowed = true;
    }
    this.metrics.dirtyKeys.set(this.dirty.size);
    this.schedule();
  }

  /** Healthy when Redis takes our jobs (or there is nothing to hand over). */
  get healthy(): boolean {
    return this.failingSince === undefined;
  }

  get pending(): number {
    return this.dirty.size;
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (Date.now() < this.nextTryAt) return this.schedule();
    if (this.dirty.size === 0 && !this.overflowed) return;
    this.timer?.();
    this.timer = undefined;
    this.lastFlushAt = Date.now();
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = undefined;
      // Keys that arrived during the write, or a failed write: flush again (after the backoff).
      this.schedule();
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const batchSize = this.opts.batchSize ?? 1000;
    while (this.dirty.size > 0) {
      const batch = [...this.dirty.entries()].slice(0, batchSize);
      try {
        // BullMQ waits for a connection that is down instead of failing: bound the wait ourselves.
        await withTimeout(
          enqueueJobs(
            this.queue,
            batch.map(([, item]) => item),
          ),
          this.opts.writeTimeoutMs ?? 3000,
          () => new Error(`Redis did not answer within ${this.opts.writeTimeoutMs ?? 3000} ms`),
        );
      } catch (error) {
        this.metrics.redisErrors.inc();
        if (this.failingSince === undefined) {
          this.failingSince = Date.now();
          this.log.error(
            { err: error instanceof Error ? error.message : String(error), pending: this.dirty.size },
            'Redis unreachable: keeping dirty keys',
          );
        }
        this.nextTryAt = Date.now() + this.backoff.next();
        return;
      }
      for (const [id, item] of batch) {
        // A newer request for the same key may have arrived while we were writing: keep that one.
        if (this.dirty.get(id) === item) this.dirty.delete(id);
        this.metrics.enqueued.inc({ kind: item.key.kind });
      }
      this.metrics.dirtyKeys.set(this.dirty.size);
      this.opts.onEnqueued?.();
    }
    const recovered = this.failingSince !== undefined || this.overflowed;
    if (this.failingSince !== undefined) {
      this.log.info(
        { downForMs: Date.now() - this.failingSince },
        'Redis reachable again: dirty keys flushed',
      );
      this.failingSince = undefined;
    }
    this.backoff.reset();
    this.overflowed = false;
    if (recovered) this.opts.onRecovered();
  }

  /** Stops the timer and tries to hand over what is pending (SIGTERM), within `timeoutMs`. */
  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    this.timer?.();
    this.timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.dirty.size > 0 && Date.now() < deadline) {
      this.nextTryAt = 0;
      await this.flush();
      if (this.dirty.size > 0) await new Promise((r) => setTimeout(r, 100));
    }
  }
}
