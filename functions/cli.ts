// `npm run functions -- <command>`: the CLI runtime of the functions.
//   worker                                   run the BullMQ workers (+ /metrics) until SIGTERM/Ctrl-C
//   reconcile namespace <name>               one-shot reconcile, in this process, printing the actions
//   reconcile serviceaccount <ns>/<name>
//   reconcile imagepullsecret <name>
//   audit [--follow] [--cluster C] [--namespace N] [--cr NAME] [--outcome O] [--since 10m|ISO] [--limit N]
//                                            the newest N entries (default 1000), oldest first, as tail does
//   fleet [--json]                           per cluster and CR: desired/succeeded, token expiry, last error
//   tokens                                   run the fleet's token refresh now, in this process
//   rotate <registryId|registryId.type>...   ask for a new token now (done by the next refresh, queued)
// The fleet comes from FLEET_FILE (else one cluster: CLUSTER_ID).
// Configuration comes from the environment (REDIS_URL, QUEUE_PREFIX, CLUSTER_ID, KUBECONFIG, ...): a missing
// REDIS_URL (or KUBECONFIG, for commands that talk to a cluster) is named and the CLI exits 2; a Redis that does
// not answer is said once and the CLI exits 1 (`npm start` writes a file to source with all of it).

import { parseArgs } from 'node:util';
import { FunctionsEnv, parseEnv } from '../shared/config.js';
import {
  describeKey,
  type JobKey,
  JobKey as JobKeySchema,
  REGISTRY_TOKENS_KEY,
} from '../shared/contracts/jobs.js';
import { startDeadline } from '../shared/deadline.js';
import { describeError } from '../shared/errors.js';
import { serveHealthHttp } from '../shared/http-server.js';
import { enqueueJobs } from '../shared/queue.js';
import { createRedisClient } from '../shared/redis-connection.js';
import { withTimeout } from '../shared/timeout.js';
import { describeIssues } from '../shared/zod-issues.js';
import { AuditFilter, followAudit, listAudit, parseSince } from './adapters/audit-reader.js';
import { runJob } from './core/run-job.js';
import { buildFunctionsRuntime, type FunctionsRuntime } from './runtime/build-runtime.js';
import { startWorkerWatches } from './runtime/cluster-views.js';
import { describeFleet, formatFleet } from './runtime/fleet-view.js';
import { registerOperationalGauges } from './runtime/operational-metrics.js';
import { keepSchedules } from './runtime/schedule-keeper.js';
import { startWorker } from './runtime/worker.js';

const COMMANDS = ['worker', 'reconcile', 'audit', 'fleet', 'tokens', 'rotate'];
/** Commands that talk to a cluster (the others need only Redis). */
const NEEDS_CLUSTER = new Set(['worker', 'reconcile', 'fleet', 'tokens']);

/** What the command cannot run without, said once (undefined: all there). */
export function missingEnvironment(command: string, env: NodeJS.ProcessEnv): string | undefined {
  const unset = (name: string) => (env[name] ?? '').trim() === '';
  if (unset('REDIS_URL')) {
    return 'REDIS_URL is not set: export the Redis URL the functions use (`npm start` writes a file to source with it, KUBECONFIG and the emulator key)';
  }
  if (
    NEEDS_CLUSTER.has(command) &&
    unset('KUBECONFIG') &&
    unset('FLEET_FILE') &&
    unset('KUBERNETES_SERVICE_HOST')
  ) {
    return `KUBECONFIG is not set: \`${command}\` needs a cluster (KUBECONFIG, a FLEET_FILE, or running in a pod)`;
  }
  return undefined;
}

/** REDIS_URL without user or password, for messages (`redis://host:port/db`, `redis+cluster://h:p,h:p`). */
function describeRedisUrl(url: string): string {
  const m = /^([a-z+]+:\/\/)(?:[^@/]*@)?([^/?#]*)(\/\d*)?/i.exec(url);
  return m ? `${m[1]}${m[2]}${m[3] && m[3] !== '/' ? m[3] : ''}` : '(invalid REDIS_URL)';
}

/**
 * One connection attempt and a PING within 5 s, or one clear line (the runtime's connection would otherwise
 * retry forever, as a worker's must).
 */
async function reachRedis(url: string): Promise<void> {
  const probe = createRedisClient(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 5000,
    enableOfflineQueue: false,
  });
  let cause: unknown;
  probe.on('error', (error) => {
    cause ??= error;
  });
  try {
    await withTimeout(
      probe.connect().then(() => probe.ping()),
      5000,
      () => new Error('no answer within 5 s'),
    );
  } catch (error) {
    // The socket's own error (ECONNREFUSED, ENOTFOUND) says more than "Connection is closed".
    throw new Error(`cannot reach Redis at ${describeRedisUrl(url)}: ${describeError(cause ?? error)}`);
  } finally {
    probe.disconnect();
  }
}

const USAGE =
  'usage: functions worker | reconcile <namespace|serviceaccount|imagepullsecret> <name> | audit [...] | fleet [--json] | tokens | rotate <registryId>...';

function printActions(actions: { verb: string; object: string; detail?: string | undefined }[]) {
  for (const a of actions) console.log(`${a.verb.padEnd(8)} ${a.object}${a.detail ? `  (${a.detail})` : ''}`);
}

function keyFrom(cluster: string, kind: string | undefined, name: string | undefined): JobKey {
  if (!kind || !name) throw new Error(USAGE);
  const [ns, sa] = name.split('/');
  const raw =
    kind === 'serviceaccount' ? { cluster, kind, namespace: ns, name: sa } : { cluster, kind, name };
  const key = JobKeySchema.safeParse(raw);
  if (!key.success) throw new Error(`bad key: ${describeIssues(key.error.issues)}`);
  return key.data;
}

/** One job run from the command line, as a worker runs it: the same deadline (JOB_TIMEOUT_MS) and a logger per key. */
async function runCliJob(rt: FunctionsRuntime, key: JobKey) {
  const what = describeKey(key);
  const deadline = startDeadline(rt.env.JOB_TIMEOUT_MS, `job ${what}`);
  try {
    return await runJob(
      rt.runDeps,
      { v: 1, key, trigger: 'cli', at: Date.now() },
      { attempt: 1, maxAttempts: 1, signal: deadline.signal, log: rt.log.child({ key: what }) },
    );
  } finally {
    deadline.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', default: false },
      cluster: { type: 'string' },
      namespace: { type: 'string' },
      cr: { type: 'string' },
      outcome: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string', default: '1000' },
      json: { type: 'boolean', default: false },
    },
  });
  const [command, kind, name] = positionals;
  if (!command || !COMMANDS.includes(command)) {
    console.error(USAGE);
    return 2;
  }
  // Nothing here has a sensible default: a CLI that quietly tries 127.0.0.1:6379 (or no cluster) helps no one.
  const missing = missingEnvironment(command, process.env);
  if (missing) {
    console.error(`error: ${missing}`);
    return 2;
  }
  const env = parseEnv(FunctionsEnv);
  await reachRedis(env.REDIS_URL);
  const rt = buildFunctionsRuntime(env);
  try {
    switch (command) {
      case 'worker': {
        const worker = startWorker(rt);
        const schedules = keepSchedules(rt);
        await schedules.ready;
        // The view its jobs read, and the repair of our Secrets (runtime/cluster-views.ts).
        const watches = await startWorkerWatches(rt);
        registerOperationalGauges(rt.metrics.registry, rt);
        // Ready once Redis answers and the workers run: a worker that cannot reach Redis takes no jobs.
        const server = await serveHealthHttp(env.METRICS_PORT, rt.metrics.registry, () =>
          rt.redis.status !== 'ready'
            ? { ready: false, detail: `redis ${rt.redis.status}` }
            : worker.isRunning()
              ? { ready: true, detail: 'working' }
              : { ready: false, detail: 'workers not running' },
        );
        rt.log.info(
          { concurrency: env.WORKER_CONCURRENCY, metricsPort: env.METRICS_PORT },
          'workers running',
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        schedules.stop();
        await watches.stop();
        await worker.close();
        server.close();
        return 0;
      }
      case 'reconcile': {
        const key = keyFrom(env.CLUSTER_ID, kind, name);
        const result = await runCliJob(rt, key);
        printActions(result.actions);
        if (result.skipped) console.log(`skipped: ${result.skipped}`);
        return 0;
      }
      case 'fleet': {
        const view = await describeFleet(rt);
        console.log(values.json ? JSON.stringify(view, null, 2) : formatFleet(view));
        return view.clusters.every((c) => c.reachable) ? 0 : 3;
      }
      case 'tokens': {
        try {
          const result = await runCliJob(rt, REGISTRY_TOKENS_KEY);
          printActions(result.actions);
          return 0;
        } catch (error) {
          printActions((error as { partialResult?: { actions: [] } }).partialResult?.actions ?? []);
          throw error;
        }
      }
      case 'rotate': {
        const targets = positionals.slice(1);
        if (targets.length === 0)
          throw new Error('usage: functions rotate <registryId|registryId.tokenType>...');
        // Through the queue, so that a rotation never runs concurrently with the scheduled refresh.
        await rt.tokenReports.requestRotation(targets);
        await enqueueJobs(rt.queue, [{ key: { ...REGISTRY_TOKENS_KEY }, trigger: 'cli' }]);
        console.log(
          `rotation requested for ${targets.join(', ')}: the workers' next token refresh issues it`,
        );
        return 0;
      }
      case 'audit': {
        const filter = AuditFilter.parse({
          cluster: values.cluster,
          namespace: values.namespace,
          cr: values.cr,
          outcome: values.outcome,
          since: values.since ? parseSince(values.since) : undefined,
        });
        for (const entry of await listAudit(rt.redis, rt.auditKey, filter, Number(values.limit)))
          console.log(JSON.stringify(entry));
        if (values.follow) {
          const abort = new AbortController();
          process.once('SIGINT', () => abort.abort());
          for await (const entry of followAudit(rt.redis, rt.auditKey, filter, abort.signal))
            console.log(JSON.stringify(entry));
        }
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } finally {
    await rt.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
