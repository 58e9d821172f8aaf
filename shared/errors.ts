/**
 * A failure that no retry can fix (bad payload, a CR that cannot be planned, missing permission):
 * the job fails once, visibly, with this message.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  /** The HTTP status of the API answer that caused it, if any. */
  status?: number;
}

/** A transient failure (429, 5xx, 409, network): the queue retries it with backoff. */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
  /** The HTTP status of the API answer that caused it, if any. */
  status?: number;
}

/** The message of anything thrown, without stack. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
