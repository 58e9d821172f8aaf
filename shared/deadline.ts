import { setMaxListeners } from 'node:events';
import { RetryableError } from './errors.js';

// Deadlines as AbortSignals, in one place for every runtime and adapter: a job gets a signal that aborts at
// its deadline; the core checks it between steps; each adapter hands it to the HTTP request it makes (client-
// node's request context, the Tencent SDK's `signal` option, node:https) and races the call against it, so
// a job that hits its deadline stops within milliseconds and its runtime can give the job back to the queue.
// Written for Node 18 too (the SCF bundle): no AbortSignal.any.

/** A job (or a call) ran out of time. Retryable: the queue runs it again with backoff. */
export class DeadlineExceededError extends RetryableError {}

/** `signal`'s reason as an Error (a DeadlineExceededError unless the signal was aborted with an Error). */
export function abortReason(signal: AbortSignal, what = 'the operation'): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError' && reason.name !== 'TimeoutError')
    return reason;
  return new DeadlineExceededError(`${what}: deadline exceeded`);
}

/** Throws the signal's reason if it is aborted: the core calls it between steps. */
export function throwIfAborted(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw abortReason(signal, what);
}

/** A signal that aborts when any of `signals` does (with that one's reason); `unlink` drops its listeners. */
export function linkSignals(signals: readonly (AbortSignal | undefined)[]): {
  signal: AbortSignal;
  unlink: () => void;
} {
  const controller = new AbortController();
  // One job's calls may all listen at once (a CR job's parallel rewrites): not a leak.
  setMaxListeners(0, controller.signal);
  const listeners: [AbortSignal, () => void][] = [];
  const unlink = () => {
    for (const [s, l] of listeners) s.removeEventListener('abort', l);
    listeners.length = 0;
  };
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const listener = () => {
      unlink();
      controller.abort(s.reason);
    };
    listeners.push([s, listener]);
    s.addEventListener('abort', listener, { once: true });
  }
  if (controller.signal.aborted) unlink();
  return { signal: controller.signal, unlink };
}

export interface Deadline {
  signal: AbortSignal;
  /** Epoch ms at which `signal` aborts. */
  at: number;
  /** Clears the timer (call when the work is done, so no timer outlives it). */
  dispose(): void;
}

/**
 * A deadline `ms` from now (or at the parent's abort, whichever comes first). The signal's reason is a
 * DeadlineExceededError naming `what` and the budget.
 */
export function startDeadline(ms: number, what: string, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const at = Date.now() + Math.max(0, ms);
  const timer = setTimeout(
    () => controller.abort(new DeadlineExceededError(`${what}: deadline of ${Math.round(ms)} ms exceeded`)),
    Math.max(0, ms),
  );
  timer.unref?.();
  const linked = parent ? linkSignals([controller.signal, parent]) : undefined;
  return {
    signal: linked?.signal ?? controller.signal,
    at,
    dispose: () => {
      clearTimeout(timer);
      linked?.unlink();
    },
  };
}

/**
 * `promise`, or the signal's reason as soon as it aborts (the work behind `promise` is expected to stop by
 * itself too, since it got the same signal; this only makes sure nobody waits for it).
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what?: string,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(abortReason(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? abortReason(signal, what) : error);
      },
    );
  });
}

/** An adapter whose calls can be bound to one job's signal. */
export interface SignalBound {
  /** This adapter, for one job: every call it makes carries `signal` (the clients are shared, not copied). */
  withSignal(signal: AbortSignal | undefined): this;
}

/**
 * A view of `adapter` whose `signal` field is `signal`: the same instance underneath (its clients, caches
 * and connection pools are shared), one tiny object per job. Adapters implement `withSignal` with it.
 */
export function bindSignal<T extends { signal?: AbortSignal | undefined }>(
  adapter: T,
  signal: AbortSignal | undefined,
): T {
  const view = Object.create(adapter) as T;
  view.signal = signal;
  return view;
}
