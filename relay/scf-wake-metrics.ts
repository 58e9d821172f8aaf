import { Counter, Gauge, type Registry } from 'prom-client';

/** The relay's SCF wake-up metrics (registered in the relay's registry, served on /metrics). */
export function createWakeMetrics(registry: Registry) {
  return {
    invocations: new Counter({
      name: 'tcr_relay_scf_invocations_total',
      help: 'Asynchronous SCF Invokes the relay made that the API accepted.',
      registers: [registry],
    }),
    errors: new Counter({
      name: 'tcr_relay_scf_invoke_errors_total',
      help: 'Failed SCF wake-ups, by API error code (RequestLimitExceeded, InternalError, NetworkError, RedisError...).',
      labelNames: ['code'],
      registers: [registry],
    }),
    coalesced: new Counter({
      name: 'tcr_relay_scf_wakes_coalesced_total',
      help: 'Wake-ups not needed because the slot’s invocation was already draining.',
      registers: [registry],
    }),
    slotsBusy: new Gauge({
      name: 'tcr_relay_scf_slots_busy',
      help: 'Wake slots held by an invocation (or an Invoke in progress), as last seen.',
      registers: [registry],
    }),
    backlog: new Gauge({
      name: 'tcr_relay_scf_backlog',
      help: 'Jobs waiting in the queue, as last seen by the waker.',
      registers: [registry],
    }),
  };
}
export type WakeMetrics = ReturnType<typeof createWakeMetrics>;
