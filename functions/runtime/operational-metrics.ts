import { Gauge, type Registry } from 'prom-client';
import type { FunctionsRuntime } from './build-runtime.js';

// Gauges read at scrape time, for the chart's alerts (PrometheusRule): queue backlog and age, and when the
// tokens this cluster stores expire. Served by the worker; each scrape costs two Redis calls and, at most
// once a minute, one LIST of the token Secrets of this cluster (label selector, tcr-assistant-system).

const TOKEN_READ_EVERY_MS = 60_000;

export function registerOperationalGauges(registry: Registry, rt: FunctionsRuntime): void {
  new Gauge({
    name: 'tcr_queue_waiting_jobs',
    help: 'Jobs waiting in the queue (not delayed, not active).',
    registers: [registry],
    async collect() {
      this.set(await rt.queue.getWaitingCount());
    },
  });
  new Gauge({
    name: 'tcr_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job (0 when none waits).',
    registers: [registry],
    async collect() {
      const [oldest] = await rt.queue.getJobs(['wait'], 0, 0, true);
      this.set(oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0);
    },
  });
  let lastRead = 0;
  let tokens: { registry: string; type: string; expiresAt: number }[] = [];
  new Gauge({
    name: 'tcr_token_expiry_timestamp_seconds',
    help: 'When the TCR token stored in this cluster expires (Unix seconds), by registry and token type.',
    labelNames: ['registry', 'type'],
    registers: [registry],
    async collect() {
      if (Date.now() - lastRead > TOKEN_READ_EVERY_MS) {
        lastRead = Date.now();
        try {
          const { system } = await rt.connect(rt.env.CLUSTER_ID);
          // A scrape must not hang on a slow API server: the LIST gets 10 s.
          tokens = (await system.withSignal(AbortSignal.timeout(10_000)).listTokens())
            .filter((t) => t.expiresAt > 0)
            .map((t) => ({ registry: t.registryId, type: t.tokenType, expiresAt: t.expiresAt }));
        } catch (error) {
          rt.log.warn(
            { err: error instanceof Error ? error.message : String(error) },
            'token expiry not read',
          );
        }
      }
      this.reset();
      for (const t of tokens) this.set({ registry: t.registry, type: t.type }, t.expiresAt / 1000);
    },
  });
}
