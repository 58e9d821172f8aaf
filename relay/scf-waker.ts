import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { backoffDelay } from '../shared/backoff.js';
import type { WakeSnapshot } from '../shared/contracts/wake-slots.js';
import type { WakeMetrics } from './scf-wake-metrics.js';

// The relay wakes the SCF function when it enqueues, instead of leaving new jobs to the next timer: an
// asynchronous Invoke per wake slot, at most one in flight per slot (an invocation drains until the queue
// stays empty, so every job enqueued meanwhile is taken without another Invoke), more slots while the backlog
// grows, up to a ceiling that fits the function's concurrency quota. A failed Invoke is retried with backoff
// and jitter; nothing here ever blocks enqueueing, and the timers of serverless.yml keep draining regardless.

/** The slots' state in Redis (shared/contracts/wake-slots.ts). */
export interface WakeStore {
  inspect(slots: number): Promise<WakeSnapshot>;
  acquire(slot: number, id: string, now: number, leaseMs: number, startTimeoutMs: number): Promise<boolean>;
  markInvoked(slot: number, id: string, now: number, leaseMs: number): Promise<boolean>;
  release(slot: number, id: string, force: boolean): Promise<unknown>;
}

/** The event an invocation gets: keys only, never a credential. */
export interface WakeEvent {
  action: 'drain';
  slot: number;
  wake: string;
}

/** An asynchronous Invoke (InvocationType Event). Throws an InvokeError naming the API's code. */
export interface Invoker {
  invoke(event: WakeEvent): Promise<void>;
}

export class InvokeError extends Error {
  override readonly name = 'InvokeError';
  constructor(
    /** The API's error code (`RequestLimitExceeded`, `InternalError`...), or `NetworkError`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface WakerOptions {
  /** The ceiling: concurrent invocations the relay may keep in flight (≤ the function's concurrency quota). */
  maxSlots: number;
  /** One more slot per this many waiting jobs. */
  jobsPerSlot: number;
  /** While invocations run or jobs wait, the state is looked at this often (new slots, a successor). */
  tickMs: number;
  /** How long a slot stays taken if nothing releases it (≥ the function's timeout). */
  leaseMs: number;
  /** An accepted Invoke whose invocation has not started after this long is given up and redone. */
  startTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  random?: () => number;
  now?: () => number;
}

/** Slots wanted for a backlog: none when nothing waits, else one per `jobsPerSlot`, within [1, max]. */
export function desiredSlots(backlog: number, jobsPerSlot: number, maxSlots: number): number {
  if (backlog <= 0) return 0;
  return Math.max(1, Math.min(maxSlots, Math.ceil(backlog / jobsPerSlot)));
}

/** Passes (one Redis round trip each) start at most this often, however often the publisher pokes. */
const MIN_PASS_GAP_MS = 20;

export class ScfWaker {
  private lastPass = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private passing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Slots whose Invoke this relay is making right now. */
  private readonly inflight = new Set<number>();
  private readonly failures = new Map<number, number>();
  private readonly retryAt = new Map<number, number>();
  /** The condition last logged (one line per condition, not per attempt). */
  private failing: string | undefined;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(
    private readonly store: WakeStore,
    private readonly invoker: Invoker,
    private readonly metrics: WakeMetrics,
    private readonly log: Logger,
    private readonly opts: WakerOptions,
  ) {
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  /** Jobs were enqueued: make sure an invocation will take them. Returns at once; never throws. */
  poke(): void {
    if (this.stopped) return;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.passing) {
      if (delayMs === 0) this.again = true;
      else this.arm(delayMs);
      return;
    }
    this.arm(delayMs);
  }

  private arm(wantedDelayMs: number): void {
    const delayMs = Math.max(wantedDelayMs, this.lastPass + MIN_PASS_GAP_MS - this.now(), 0);
    const at = this.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.lastPass = this.now();
      this.passing = this.pass().finally(() => {
        this.passing = undefined;
        if (this.again) {
          this.again = false;
          this.schedule(0);
        }
      });
    }, delayMs);
    this.timer.unref?.();
  }

  /** One look at the backlog and the slots; wakes every wanted slot that is free. */
  private async pass(): Promise<void> {
    let snapshot: WakeSnapshot;
    try {
      snapshot = await this.store.inspect(this.opts.maxSlots);
    } catch (error) {
      // Redis is down: the publisher keeps the dirty keys and pokes again once they are written.
      this.metrics.errors.inc({ code: 'RedisError' });
      this.note('redis', `wake slots unreadable: ${error instanceof Error ? error.message : String(error)}`);
      this.schedule(Math.max(this.opts.tickMs, 1000));
      return;
    }
    const now = this.now();
    const held = new Map(snapshot.held.map((h) => [h.slot, h]));
    const wanted = desiredSlots(snapshot.backlog, this.opts.jobsPerSlot, this.opts.maxSlots);
    this.metrics.backlog.set(snapshot.backlog);
    this.metrics.slotsBusy.set(snapshot.held.length);
    let nextRetry = Number.POSITIVE_INFINITY;
    for (let slot = 0; slot < wanted; slot++) {
      if (this.inflight.has(slot)) continue;
      const retry = this.retryAt.get(slot) ?? 0;
      if (retry > now) {
        nextRetry = Math.min(nextRetry, retry);
        continue;
      }
      const h = held.get(slot);
      if (h && !(h.state === 'invoked' && now - h.since >= this.opts.startTimeoutMs)) {
        // That slot's invocation is (about to be) draining: it takes these jobs too.
        this.metrics.coalesced.inc();
        continue;
      }
      void this.wake(slot);
    }
    if (snapshot.backlog > 0 || snapshot.held.length > 0 || this.inflight.size > 0) {
      this.schedule(Math.min(this.opts.tickMs, Math.max(0, nextRetry - now)));
    }
  }

  private async wake(slot: number): Promise<void> {
    this.inflight.add(slot);
    const id = randomBytes(8).toString('hex');
    let taken = false;
    try {
      taken = await this.store.acquire(slot, id, this.now(), this.opts.leaseMs, this.opts.startTimeoutMs);
      if (!taken) return;
      await this.invoker.invoke({ action: 'drain', slot, wake: id });
      await this.store.markInvoked(slot, id, this.now(), this.opts.leaseMs);
      this.metrics.invocations.inc();
      this.failures.delete(slot);
      this.retryAt.delete(slot);
      if (this.failing) {
        this.log.info({ slot }, 'SCF wake-ups work again');
        this.failing = undefined;
      }
    } catch (error) {
      const code = error instanceof InvokeError ? error.code : 'RedisError';
      this.metrics.errors.inc({ code });
      const failures = (this.failures.get(slot) ?? 0) + 1;
      this.failures.set(slot, failures);
      const delay = backoffDelay(failures, this.opts.backoffBaseMs, this.opts.backoffCapMs, this.random);
      this.retryAt.set(slot, this.now() + delay);
      this.note(
        code,
        `SCF Invoke failed (${code}): retrying with backoff; the timers keep draining meanwhile`,
        {
          slot,
          err: error instanceof Error ? error.message : String(error),
        },
      );
      // The slot is free again for the retry (and for another relay after a failover).
      if (taken) await this.store.release(slot, id, true).catch(() => undefined);
      this.schedule(delay);
    } finally {
      this.inflight.delete(slot);
    }
  }

  /** Logs a failure condition once, until it changes or clears. */
  private note(condition: string, message: string, fields: Record<string, unknown> = {}): void {
    if (this.failing === condition) return;
    this.failing = condition;
    this.log.warn(fields, message);
  }
}
