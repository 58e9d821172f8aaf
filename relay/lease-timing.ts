// The timing of leader election, pure (docs/adr-017-lease-timing.md): when the next round of Lease requests
// is due, how long a round may take, when a leader must stop, and what that costs and buys.
//
// client-go uses one period (retryPeriod, 2 s) both to renew while healthy and to retry after a failure, and
// makes every standby poll the Lease at that period: ~1 request/s for two replicas, forever. Here the two are
// split: a healthy leader renews every `renewMs` (10 s by default); only after a failed round does it try
// again every `retryMs` (2 s), until its renew deadline. Standbys do not poll: they watch the Lease and try
// to take it only when their own timer says it expired (or at once when it was released).

export interface LeaseTiming {
  /** The Lease's duration: a standby takes over once it has seen no renewal for this long. */
  durationMs: number;
  /** A healthy leader's renewal period. */
  renewMs: number;
  /** After a failed round (an error, a timeout), the next one this much later. */
  retryMs: number;
}

/**
 * The renewal period when none is set: a third of the lease, so that a leader gets its renewal plus a few
 * retries before its renew deadline (duration − renewal), but never so long that no retry fits.
 */
export function defaultRenewMs(durationMs: number, retryMs: number): number {
  return Math.floor(Math.min(durationMs / 3, (durationMs - retryMs) / 2));
}

/** The timing from the settings (renewal derived when absent); throws an error naming what is wrong. */
export function leaseTimingOf(settings: {
  durationMs: number;
  retryMs: number;
  renewMs?: number | undefined;
}): LeaseTiming {
  const timing = {
    durationMs: settings.durationMs,
    retryMs: settings.retryMs,
    renewMs: settings.renewMs ?? defaultRenewMs(settings.durationMs, settings.retryMs),
  };
  const problem = checkLeaseTiming(timing);
  if (problem) throw new Error(problem);
  return timing;
}

/**
 * Why these settings cannot work, or undefined. A leader renews every `renewMs` and must stop at the renew
 * deadline (duration − renewal), which leaves a standby a margin of one renewal period before it may take
 * over; between the first renewal that fails and that deadline at least one retry must fit.
 */
export function checkLeaseTiming(t: LeaseTiming): string | undefined {
  const names = `LEASE_DURATION_MS ${t.durationMs}, LEASE_RENEW_MS ${t.renewMs}, LEASE_RETRY_MS ${t.retryMs}`;
  if (!(t.retryMs > 0) || !(t.renewMs > 0) || !(t.durationMs > 0))
    return `lease timing must be positive (${names})`;
  if (t.durationMs < 2 * t.renewMs + t.retryMs)
    return `LEASE_DURATION_MS must be at least 2 × LEASE_RENEW_MS + LEASE_RETRY_MS, so that a leader whose renewal fails can retry before its renew deadline and still stop a renewal period before a standby may take over (${names})`;
  return undefined;
}

/** How long a leader may go without a successful renewal before it stops leading. */
export function renewDeadlineMs(t: LeaseTiming): number {
  return t.durationMs - t.renewMs;
}

/**
 * How long one round's requests may take: half the time between a leader's first renewal attempt and its renew
 * deadline (at least one retry period), so that a request that hangs still leaves room for another attempt.
 */
export function roundTimeoutMs(t: LeaseTiming): number {
  return Math.max(t.retryMs, (renewDeadlineMs(t) - t.renewMs) / 2);
}

/** What the elector knows when it plans its next round. */
export interface ElectionState {
  now: number;
  leading: boolean;
  /** The last round failed (an error or a timeout: not a lost race, which is an answer). */
  lastRoundFailed: boolean;
  /** Start of the last successful renewal (or acquisition), while leading. */
  lastRenewAt: number;
  /**
   * The Lease as last seen (by a read or the watch), and when this replica first saw that record; absent when
   * it has not seen the Lease yet. `holder` is '' when it was released; `exists` false when there is none.
   */
  observed?: { at: number; holder: string; exists: boolean } | undefined;
}

/** In how many ms the next round is due. */
export function nextRoundInMs(t: LeaseTiming, s: ElectionState): number {
  if (s.lastRoundFailed) return t.retryMs;
  if (s.leading) return Math.max(0, s.lastRenewAt + t.renewMs - s.now);
  if (!s.observed) return 0;
  if (!s.observed.exists || s.observed.holder === '') return 0;
  return Math.max(0, s.observed.at + t.durationMs - s.now);
}

/** What the timing costs and buys, for the ADR, the README and the startup log. */
export function describeLeaseTiming(t: LeaseTiming) {
  const deadline = renewDeadlineMs(t);
  return {
    /** A healthy leader's requests per second (one PUT per renewal). */
    leaderRequestsPerSecond: 1 / (t.renewMs / 1000),
    /** A standby's: none while its watch is open (one watch re-opened every 5-10 minutes). */
    standbyRequestsPerSecond: 0,
    /** Renewal attempts a leader gets between its last success and its renew deadline. */
    attemptsBeforeStepDown: 1 + Math.floor((deadline - t.renewMs) / t.retryMs),
    renewDeadlineMs: deadline,
    /** Margin between the leader's last moment and a standby's first: never two leaders at once. */
    safetyMarginMs: t.durationMs - deadline,
    /**
     * Leader killed (no release): a standby takes over `durationMs` after it saw the last renewal, which came
     * 0 to `renewMs` before the kill.
     */
    crashFailoverMs: { min: t.durationMs - t.renewMs, max: t.durationMs },
    /** Leader stopped (SIGTERM: it releases the Lease): the watch tells the standby at once. */
    gracefulFailover: 'one watch event + one GET and PUT (milliseconds)',
  };
}
