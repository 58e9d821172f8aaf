/**
 * Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs` with a
 * message saying what was awaited and what was last seen (value or error), not just "timed out".
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastSeen = 'nothing yet';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      lastSeen = `returned ${String(value)}`;
    } catch (error) {
      lastSeen = `threw ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last check ${lastSeen}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
