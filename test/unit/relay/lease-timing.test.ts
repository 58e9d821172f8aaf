import { describe, expect, it } from 'vitest';
import {
  checkLeaseTiming,
  defaultRenewMs,
  describeLeaseTiming,
  type ElectionState,
  leaseTimingOf,
  nextRoundInMs,
  renewDeadlineMs,
  roundTimeoutMs,
} from '../../../relay/lease-timing.js';

describe('leaseTimingOf', () => {
  it.each([
    // duration, retry, renew given → renew used, renew deadline, round timeout
    { duration: 30_000, retry: 2_000, renew: undefined, want: 10_000, deadline: 20_000, round: 5_000 },
    { duration: 15_000, retry: 2_000, renew: undefined, want: 5_000, deadline: 10_000, round: 2_500 },
    // the e2e files' short lease
    { duration: 3_000, retry: 300, renew: undefined, want: 1_000, deadline: 2_000, round: 500 },
    // the chart e2e's 10 s lease with the default retry
    { duration: 10_000, retry: 2_000, renew: undefined, want: 3_333, deadline: 6_667, round: 2_000 },
    // a short lease with a long retry: the renewal shrinks so that one retry still fits
    { duration: 5_000, retry: 2_000, renew: undefined, want: 1_500, deadline: 3_500, round: 2_000 },
    { duration: 45_000, retry: 2_000, renew: 15_000, want: 15_000, deadline: 30_000, round: 7_500 },
  ])('lease $duration ms, retry $retry ms, renewal $renew → renew every $want ms', (c) => {
    const t = leaseTimingOf({ durationMs: c.duration, retryMs: c.retry, renewMs: c.renew });
    expect(t.renewMs).toBe(c.want);
    expect(Math.round(renewDeadlineMs(t))).toBe(c.deadline);
    expect(Math.round(roundTimeoutMs(t))).toBe(c.round);
    expect(checkLeaseTiming(t)).toBeUndefined();
    expect(defaultRenewMs(c.duration, c.retry)).toBeLessThanOrEqual(c.duration / 3);
  });

  it.each([
    { duration: 15_000, retry: 2_000, renew: 7_000, why: /at least 2 × LEASE_RENEW_MS \+ LEASE_RETRY_MS/ },
    { duration: 30_000, retry: 2_000, renew: 15_000, why: /LEASE_RENEW_MS 15000/ },
    { duration: 3_000, retry: 0, renew: undefined, why: /must be positive/ },
    { duration: 1_000, retry: 2_000, renew: undefined, why: /must be positive|at least/ },
  ])('refuses lease $duration ms, retry $retry ms, renewal $renew', (c) => {
    expect(() => leaseTimingOf({ durationMs: c.duration, retryMs: c.retry, renewMs: c.renew })).toThrow(
      c.why,
    );
  });
});

describe('nextRoundInMs (lease 30 s, renewal 10 s, retry 2 s)', () => {
  const t = leaseTimingOf({ durationMs: 30_000, retryMs: 2_000 });
  const base: ElectionState = { now: 100_000, leading: false, lastRoundFailed: false, lastRenewAt: 0 };
  it.each<{ what: string; state: Partial<ElectionState>; want: number }>([
    {
      what: 'leader, renewed 3 s ago → renew in 7 s',
      state: { leading: true, lastRenewAt: 97_000 },
      want: 7_000,
    },
    { what: 'leader, renewal overdue → now', state: { leading: true, lastRenewAt: 80_000 }, want: 0 },
    {
      what: 'leader whose last round failed → retry in 2 s',
      state: { leading: true, lastRenewAt: 95_000, lastRoundFailed: true },
      want: 2_000,
    },
    { what: 'candidate that has not seen the Lease → now', state: {}, want: 0 },
    {
      what: 'standby that saw a renewal 5 s ago → when it expires, in 25 s',
      state: { observed: { at: 95_000, holder: 'b', exists: true } },
      want: 25_000,
    },
    {
      what: 'standby whose sighting is older than the lease → now',
      state: { observed: { at: 60_000, holder: 'b', exists: true } },
      want: 0,
    },
    {
      what: 'released Lease (holder empty) → now',
      state: { observed: { at: 99_999, holder: '', exists: true } },
      want: 0,
    },
    {
      what: 'no Lease at all → now (create it)',
      state: { observed: { at: 99_999, holder: '', exists: false } },
      want: 0,
    },
    {
      what: 'standby whose last round failed (API down) → retry in 2 s, not at expiry',
      state: { lastRoundFailed: true, observed: { at: 95_000, holder: 'b', exists: true } },
      want: 2_000,
    },
  ])('$what', ({ state, want }) => {
    expect(nextRoundInMs(t, { ...base, ...state })).toBe(want);
  });
});

describe('describeLeaseTiming', () => {
  it.each([
    // what the ADR's table states
    {
      duration: 30_000,
      retry: 2_000,
      perSecond: 0.1,
      attempts: 6,
      margin: 10_000,
      crash: { min: 20_000, max: 30_000 },
    },
    {
      duration: 15_000,
      retry: 2_000,
      perSecond: 0.2,
      attempts: 3,
      margin: 5_000,
      crash: { min: 10_000, max: 15_000 },
    },
    {
      duration: 60_000,
      retry: 2_000,
      perSecond: 0.05,
      attempts: 11,
      margin: 20_000,
      crash: { min: 40_000, max: 60_000 },
    },
  ])(
    'lease $duration ms: $perSecond requests/s from the leader, crash failover $crash.min-$crash.max ms',
    (c) => {
      const d = describeLeaseTiming(leaseTimingOf({ durationMs: c.duration, retryMs: c.retry }));
      expect(d.leaderRequestsPerSecond).toBeCloseTo(c.perSecond, 5);
      expect(d.standbyRequestsPerSecond).toBe(0);
      expect(d.attemptsBeforeStepDown).toBe(c.attempts);
      expect(d.safetyMarginMs).toBe(c.margin);
      expect(d.crashFailoverMs).toEqual(c.crash);
    },
  );
});
