import { Counter, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/process-metrics.js';
import type { RequestObserver } from '../adapters/kube/api-call.js';
import type { JobObserver } from '../core/run-job.js';

/** Prometheus metrics of the functions: jobs, actions, outcomes, durations, API requests and errors. */
export function createFunctionsMetrics(registry = new Registry()) {
  collectProcessMetrics(registry, 'tcr_functions_');
  const jobs = new Counter({
    name: 'tcr_jobs_total',
    help: 'Jobs processed, by kind and outcome (success, retry, failed).',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tcr_job_duration_seconds',
    help: 'Time to process one job, by kind.',
    labelNames: ['kind'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const actions = new Counter({
    name: 'tcr_actions_total',
    help: 'Actions on objects, by verb (created, updated, patched, deleted, noop, conflict, skipped).',
    labelNames: ['verb'],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'tcr_kube_requests_total',
    help: 'Kubernetes API requests, by verb, resource and HTTP code (0 = no answer).',
    labelNames: ['verb', 'resource', 'code'],
    registers: [registry],
  });
  const apiErrors = new Counter({
    name: 'tcr_kube_request_errors_total',
    help: 'Kubernetes API requests that failed, by verb, resource and HTTP code.',
    labelNames: ['verb', 'resource', 'code'],
    registers: [registry],
  });
  const observeRequest: RequestObserver = (verb, resource, code) => {
    requests.inc({ verb, resource, code: String(code) });
    if (code >= 400 || code === 0) apiErrors.inc({ verb, resource, code: String(code) });
  };
  const observer: JobObserver = {
    finished(kind, outcome, seconds, result) {
      jobs.inc({ kind, outcome });
      duration.observe({ kind }, seconds);
      for (const a of result?.actions ?? []) actions.inc({ verb: a.verb });
    },
  };
  return { registry, observeRequest, observer, requests };
}
export type FunctionsMetrics = ReturnType<typeof createFunctionsMetrics>;
