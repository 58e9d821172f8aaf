import { z } from 'zod';
import { emptyAsUnset, intFrom } from '../shared/config.js';

/**
 * The relay's SCF wake-ups (off unless SCF_WAKE_FUNCTION is set). The key is the relay's own, allowed only
 * `scf:Invoke` on this function (docs/adr-010-scf-wake.md has the CAM policy); it is never logged.
 */
export const ScfWakeEnv = z
  .object({
    SCF_WAKE_FUNCTION: emptyAsUnset,
    SCF_WAKE_NAMESPACE: z.string().min(1).default('default'),
    SCF_WAKE_QUALIFIER: z.string().min(1).default('$LATEST'),
    SCF_WAKE_REGION: z.string().min(1).default('ap-guangzhou'),
    SCF_WAKE_SECRET_ID: emptyAsUnset,
    SCF_WAKE_SECRET_KEY: emptyAsUnset,
    /** SCF's API host (`host[:port]`, no scheme), or an emulator's `127.0.0.1:PORT`. */
    SCF_WAKE_ENDPOINT: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, 'SCF_WAKE_ENDPOINT must be host[:port], without a scheme')
      .default('scf.tencentcloudapi.com'),
    SCF_WAKE_PROTOCOL: z.enum(['https://', 'http://']).default('https://'),
    SCF_WAKE_TIMEOUT_SECONDS: intFrom('SCF_WAKE_TIMEOUT_SECONDS', 1).default(5),
    /** Concurrent invocations the relay keeps at most (fit the function's concurrency quota, timers aside). */
    SCF_WAKE_MAX_SLOTS: intFrom('SCF_WAKE_MAX_SLOTS', 1).max(64).default(4),
    SCF_WAKE_JOBS_PER_SLOT: intFrom('SCF_WAKE_JOBS_PER_SLOT', 1).default(100),
    SCF_WAKE_TICK_MS: intFrom('SCF_WAKE_TICK_MS', 50).default(500),
    /** ≥ the function's timeout: a slot nobody releases (a killed invocation) is free again after this. */
    SCF_WAKE_LEASE_MS: intFrom('SCF_WAKE_LEASE_MS', 1000).default(70_000),
    SCF_WAKE_START_TIMEOUT_MS: intFrom('SCF_WAKE_START_TIMEOUT_MS', 1000).default(20_000),
    SCF_WAKE_BACKOFF_MS: intFrom('SCF_WAKE_BACKOFF_MS', 10).default(500),
    SCF_WAKE_BACKOFF_CAP_MS: intFrom('SCF_WAKE_BACKOFF_CAP_MS', 100).default(30_000),
  })
  .superRefine((env, ctx) => {
    // Both halves of the key or neither (no key: wake-ups off, said once at start).
    if (Boolean(env.SCF_WAKE_SECRET_ID) === Boolean(env.SCF_WAKE_SECRET_KEY)) return;
    const missing = env.SCF_WAKE_SECRET_ID ? 'SCF_WAKE_SECRET_KEY' : 'SCF_WAKE_SECRET_ID';
    ctx.addIssue({
      code: 'custom',
      path: [missing],
      message: `${missing} is missing: the relay's key needs both SCF_WAKE_SECRET_ID and SCF_WAKE_SECRET_KEY`,
    });
  });
export type ScfWakeEnv = z.infer<typeof ScfWakeEnv>;
