import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { parseEnv } from '../shared/config.js';
import { WakeSlots } from '../shared/contracts/wake-slots.js';
import type { RedisClient } from '../shared/redis-connection.js';
import { ScfWakeEnv } from './scf-wake-config.js';
import { createWakeMetrics } from './scf-wake-metrics.js';
import { ScfWaker } from './scf-waker.js';

/**
 * The relay's SCF waker from the environment (ScfWakeEnv), or undefined when SCF_WAKE_FUNCTION is unset.
 * A bad setting fails the relay's start, naming the variable. The invoker (tencentcloud-sdk-nodejs) is
 * loaded only then: a relay that does not wake SCF does not carry the SDK in memory (≈ 8 MiB of RSS).
 */
export async function startScfWaker(
  redis: RedisClient,
  prefix: string,
  registry: Registry,
  log: Logger,
  source: NodeJS.ProcessEnv = process.env,
): Promise<ScfWaker | undefined> {
  const env = parseEnv(ScfWakeEnv, source);
  if (!env.SCF_WAKE_FUNCTION) return undefined;
  if (!env.SCF_WAKE_SECRET_ID || !env.SCF_WAKE_SECRET_KEY) {
    log.warn(
      { function: `${env.SCF_WAKE_NAMESPACE}/${env.SCF_WAKE_FUNCTION}` },
      'SCF wake-ups off: the relay has no key of its own (SCF_WAKE_SECRET_ID/KEY); only the timers drain the queue',
    );
    return undefined;
  }
  const { ScfInvoker } = await import('./scf-invoker.js');
  const invoker = new ScfInvoker({
    functionName: env.SCF_WAKE_FUNCTION,
    namespace: env.SCF_WAKE_NAMESPACE,
    qualifier: env.SCF_WAKE_QUALIFIER,
    region: env.SCF_WAKE_REGION,
    endpoint: env.SCF_WAKE_ENDPOINT,
    protocol: env.SCF_WAKE_PROTOCOL,
    timeoutSeconds: env.SCF_WAKE_TIMEOUT_SECONDS,
    credential: { secretId: env.SCF_WAKE_SECRET_ID, secretKey: env.SCF_WAKE_SECRET_KEY },
  });
  log.info(
    {
      function: `${env.SCF_WAKE_NAMESPACE}/${env.SCF_WAKE_FUNCTION}`,
      region: env.SCF_WAKE_REGION,
      maxSlots: env.SCF_WAKE_MAX_SLOTS,
    },
    'SCF wake-ups on',
  );
  return new ScfWaker(new WakeSlots(redis, prefix), invoker, createWakeMetrics(registry), log, {
    maxSlots: env.SCF_WAKE_MAX_SLOTS,
    jobsPerSlot: env.SCF_WAKE_JOBS_PER_SLOT,
    tickMs: env.SCF_WAKE_TICK_MS,
    leaseMs: env.SCF_WAKE_LEASE_MS,
    startTimeoutMs: env.SCF_WAKE_START_TIMEOUT_MS,
    backoffBaseMs: env.SCF_WAKE_BACKOFF_MS,
    backoffCapMs: env.SCF_WAKE_BACKOFF_CAP_MS,
  });
}
