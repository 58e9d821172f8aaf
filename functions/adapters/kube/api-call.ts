import { ApiException } from '@kubernetes/client-node';
import { abortable, abortReason } from '../../../shared/deadline.js';
import { RetryableError, TerminalError } from '../../../shared/errors.js';
import { KubeApiError } from '../../../shared/kube/kube-client.js';

// The one wrapper every Kubernetes API call of the functions goes through (KubeCluster, KubeSystemObjects):
// the job's deadline, the request counter, and what a failure means (retry or give up).

/** Counts every API request by verb, resource and outcome: metrics, and the zero-writes checks. */
export type RequestObserver = (verb: string, resource: string, code: number) => void;

/** What a call needs of the adapter view making it. */
export interface ApiCallContext {
  /** The job's deadline: a call past it fails with the deadline's error. */
  readonly signal: AbortSignal | undefined;
  readonly observe: RequestObserver;
}

/**
 * Runs one API call, records it, and maps failures: 404 → `notFound` if given, else typed errors. A call
 * past the view's deadline fails with the deadline's error (the request itself is cancelled too).
 */
export async function callApi<T, N = never>(
  ctx: ApiCallContext,
  verb: string,
  resource: string,
  fn: () => Promise<T>,
  opts?: { notFound: N },
): Promise<T | N> {
  const what = `${verb} ${resource}`;
  try {
    const result = await abortable(fn(), ctx.signal, what);
    ctx.observe(verb, resource, 200);
    return result;
  } catch (error) {
    if (ctx.signal?.aborted) {
      ctx.observe(verb, resource, 0);
      throw abortReason(ctx.signal, what);
    }
    const code = codeOf(error) ?? 0;
    ctx.observe(verb, resource, code);
    if (code === 404 && opts && 'notFound' in opts) return opts.notFound;
    throw classify(error, what);
  }
}

/** The HTTP status of a failed call, whether still an ApiException or already classified by `call`. */
export function codeOf(error: unknown): number | undefined {
  if (error instanceof ApiException || error instanceof KubeApiError) return error.code;
  if (error instanceof RetryableError || error instanceof TerminalError) return error.status;
  return undefined;
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      return String((JSON.parse(String(error.body)) as { message?: string }).message ?? error.body);
    } catch {
      return String(error.body);
    }
  }
  // The light transport's message already carries the Status message after the method and path.
  if (error instanceof KubeApiError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Transient (429, 5xx, 409, network) → RetryableError; the rest (400, 401, 403, 422) → TerminalError:
 * retrying a refused permission or an invalid object only delays the visible failure. The API server's
 * messages name objects, not Secret contents, so they are safe to keep.
 */
export function classify(error: unknown, what: string): Error {
  if (error instanceof RetryableError || error instanceof TerminalError) return error;
  const code = codeOf(error);
  if (code === undefined)
    return new RetryableError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  const message = `${what}: HTTP ${code}: ${messageOf(error)}`;
  const classified =
    code === 409 || code === 429 || code >= 500 ? new RetryableError(message) : new TerminalError(message);
  classified.status = code;
  return classified;
}
