import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Worker } from 'bullmq';
import { inject } from 'vitest';
import {
  buildFunctionsRuntime,
  type FunctionsRuntime,
  type RuntimeOverrides,
} from '../../functions/runtime/build-runtime.js';
import { startWorkerWatches } from '../../functions/runtime/cluster-views.js';
import { startWorker } from '../../functions/runtime/worker.js';
import { FUNCTIONS_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { FunctionsEnv, parseEnv } from '../../shared/config.js';
import type { JobKey, Trigger } from '../../shared/contracts/jobs.js';
import { createLogger } from '../../shared/logging.js';
import { enqueueJobs } from '../../shared/queue.js';
import { impersonatingKubeConfig, serviceAccountUser } from './kube.js';
import { waitFor } from './wait.js';

export const CLUSTER = 'e2e';

/** Captures every log line the functions write, to prove what never appears in them. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.lines.push(chunk.toString());
    done();
  }
  get text() {
    return this.lines.join('');
  }
}

export interface FunctionsHarness {
  rt: FunctionsRuntime;
  worker: Worker;
  logs: LogCapture;
  prefix: string;
  enqueue(key: JobKey, trigger?: Trigger): Promise<void>;
  /** Waits until no job is waiting, active or delayed (stable over two looks). */
  drain(timeoutMs?: number): Promise<void>;
  /** Kubernetes write requests (create/update/patch/delete) the functions have made so far. */
  writeCount(): Promise<number>;
  /** Kubernetes read requests (get/list) the functions' jobs have made so far (the view's watches aside). */
  readCount(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The functions as a local BullMQ worker, running as their ServiceAccount (impersonation) against the
 * run's control plane, on a queue prefix of their own so that test files never share jobs.
 */
export async function startFunctions(
  env: Record<string, string> = {},
  overrides: RuntimeOverrides = {},
): Promise<FunctionsHarness> {
  const prefix = `{t${randomBytes(4).toString('hex')}}`;
  const config = parseEnv(FunctionsEnv, {
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: prefix,
    CLUSTER_ID: CLUSTER,
    STATUS_DELAY_MS: '200',
    JOB_BACKOFF_MS: '50',
    WORKER_CONCURRENCY: '8',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs = new LogCapture();
  const rt = buildFunctionsRuntime(config, {
    kubeConfigs: {
      [CLUSTER]: impersonatingKubeConfig(serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT)),
    },
    log: createLogger('functions', 'debug', logs),
    ...overrides,
  });
  const worker = startWorker(rt);
  await worker.waitUntilReady();
  // The worker runtime's view, as deployed (CLUSTER_VIEW=off: live reads); no repair watch (tests enqueue).
  const watches = await startWorkerWatches(rt, { repair: false });
  const busy = async () => {
    const c = await rt.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).reduce((a, b) => a + b, 0);
  };
  return {
    rt,
    worker,
    logs,
    prefix,
    enqueue: (key, trigger = 'cli') => enqueueJobs(rt.queue, [{ key, trigger }]),
    async drain(timeoutMs = 60_000) {
      let idleLooks = 0;
      await waitFor(
        'the queue to drain',
        async () => {
          idleLooks = (await busy()) === 0 ? idleLooks + 1 : 0;
          return idleLooks >= 2;
        },
        { timeoutMs, intervalMs: 100 },
      );
    },
    async writeCount() {
      const metric = await rt.metrics.requests.get();
      return metric.values
        .filter((v) => ['create', 'update', 'patch', 'delete'].includes(String(v.labels.verb)))
        .reduce((sum, v) => sum + v.value, 0);
    },
    async readCount() {
      const metric = await rt.metrics.requests.get();
      return metric.values
        .filter((v) => ['get', 'list'].includes(String(v.labels.verb)))
        .reduce((sum, v) => sum + v.value, 0);
    },
    async close() {
      await watches.stop();
      await worker.close();
      await rt.queue.obliterate({ force: true }).catch(() => {});
      await rt.close();
    },
  };
}
