import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * The event-loop delay histogram's sampling period. prom-client's default (10 ms) arms a libuv timer 100 times a
 * second for the life of the process: measured here, 0.5 s of CPU per 120 s of an idle process, most of what
 * an idle relay or worker burned (issue #15's idle target is 0.5 s for both). Once a second still catches
 * every stall longer than a second and, over a scrape interval, the distribution of shorter ones.
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

/** Node's process metrics (CPU, memory, GC, event loop, handles) under `prefix`, sampled cheaply. */
export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
}
