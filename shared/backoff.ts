// The one backoff of the code base: exponential, capped, with full jitter (uniform in [0, the exponential
// step]) so that many clients retrying at once do not retry in lockstep. Every retry loop uses it: the
// watchers, the relay's publisher and SCF waker, the hosts agent, the Tencent and Kubernetes adapters. The
// queue's own job retries are BullMQ's (exponential with jitter, shared/queue.ts).

/** Full jitter: uniform in [0, min(cap, base · 2^(failures - 1))]. */
export function backoffDelay(
  failures: number,
  base: number,
  cap: number,
  random: () => number = Math.random,
): number {
  return random() * Math.min(cap, base * 2 ** Math.max(0, failures - 1));
}

export interface BackoffPolicy {
  /** The first step (the delay after one failure is uniform in [0, baseMs]). */
  baseMs: number;
  /** No step grows beyond this. */
  capMs: number;
  random?: () => number;
}

/** Consecutive failures of one loop and the delay each calls for; `reset` after a success. */
export class Backoff {
  private count = 0;

  constructor(private readonly policy: BackoffPolicy) {}

  /** Failures since the last reset. */
  get failures(): number {
    return this.count;
  }

  /** Records a failure; returns how long to wait before the next try. */
  next(): number {
    this.count++;
    return Math.round(backoffDelay(this.count, this.policy.baseMs, this.policy.capMs, this.policy.random));
  }

  reset(): void {
    this.count = 0;
  }
}

/** Waits `ms`, or less if `signal` aborts first (it resolves then: the caller checks why it woke). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
