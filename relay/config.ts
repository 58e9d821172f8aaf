import os from 'node:os';
import { z } from 'zod';
import { CommonEnv, intFrom, ms, port } from '../shared/config.js';

export const RelayEnv = CommonEnv.extend({
  /** Full resync: one CR job per CR, whose fan-out re-checks every namespace (default 10 minutes). */
  RESYNC_PERIOD_MS: ms('RESYNC_PERIOD_MS', 1000).default(600_000),
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted. */
  WATCHDOG_SILENCE_MS: ms('WATCHDOG_SILENCE_MS', 1000).default(150_000),
  HTTP_PORT: port.default(8080),
  LEASE_NAMESPACE: z.string().default('tcr-assistant-system'),
  LEASE_NAME: z.string().default('tcr-assistant-relay'),
  /**
   * Leader election (relay/lease-timing.ts, docs/adr-017-lease-timing.md): a standby takes over once it has
   * seen no renewal for LEASE_DURATION_MS; the leader renews every LEASE_RENEW_MS (default: a third of the
   * duration) and, after a failed renewal, retries every LEASE_RETRY_MS until its renew deadline.
   */
  LEASE_DURATION_MS: ms('LEASE_DURATION_MS', 1000).default(30_000),
  LEASE_RENEW_MS: ms('LEASE_RENEW_MS', 100).optional(),
  LEASE_RETRY_MS: ms('LEASE_RETRY_MS', 100).default(2_000),
  /** Identity in the Lease: the pod name in a cluster. */
  POD_NAME: z.string().default(`${os.hostname()}-${process.pid}`),
  /** At most this many dirty keys are kept while Redis is unreachable; beyond, a full resync follows. */
  DIRTY_MAX_KEYS: intFrom('DIRTY_MAX_KEYS', 100).default(200_000),
  /** Batching window: keys are handed to Redis this long after the first one arrives (no timer while idle). */
  FLUSH_INTERVAL_MS: ms('FLUSH_INTERVAL_MS', 1).default(10),
});
export type RelayEnv = z.infer<typeof RelayEnv>;
