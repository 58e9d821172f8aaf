import type { Logger } from 'pino';
import { describeError } from './errors.js';

/**
 * Logs a recurring error (a connection that keeps failing while Redis is down) as one clear line, then at most
 * one line per `everyMs` saying how many more there were, instead of a line (or a stack trace) per attempt.
 */
export function outageLog(log: Logger, message: string, everyMs = 60_000): (error: unknown) => void {
  let lastAt = 0;
  let suppressed = 0;
  return (error: unknown) => {
    const now = Date.now();
    if (now - lastAt < everyMs) {
      suppressed += 1;
      return;
    }
    log.warn({ err: describeError(error), ...(suppressed > 0 ? { repeated: suppressed } : {}) }, message);
    lastAt = now;
    suppressed = 0;
  };
}
