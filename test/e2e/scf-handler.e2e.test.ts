import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { parse } from 'acorn';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { auditStreamKey } from '../../functions/adapters/redis-audit.js';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { secretNameFor } from '../../shared/contracts/names.js';
import { connectRedis, enqueueJobs, openQueue } from '../../shared/queue.js';
import { createCr, deleteCr, docker } from '../support/crs.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import { pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// The SCF runtime as SCF runs it: the CommonJS bundle, required, called with SCF's timer event and context.

const bundle = path.join(REPO_ROOT, 'dist', 'scf', 'index.js');
type Handler = (
  event: unknown,
  context: unknown,
) => Promise<{ processed: number; stoppedBecause: string; remaining: number; failed: number }>;
let scf: { main_handler: Handler; resetWarmRuntime(): Promise<void> };
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const prefix = `{scf${randomBytes(3).toString('hex')}}`;
const redis = connectRedis(inject('redisUrl'));
const queue = openQueue(redis, { prefix, attempts: 3, backoffMs: 50 });
const timer = (message = 'drain') => ({
  Type: 'Timer',
  TriggerName: 'drain-queue',
  Time: new Date().toISOString(),
  Message: message,
});
const context = (ms: number) => ({
  time_limit_in_ms: ms,
  memory_limit_in_mb: 256,
  request_id: randomBytes(8).toString('hex'),
  function_name: 'tcr-assistant-reconcile',
  namespace: 'default',
  tencentcloud_region: 'ap-guangzhou',
});

beforeAll(() => {
  execFileSync('node', [path.join(REPO_ROOT, 'infra', 'scripts', 'build-scf.mjs')], { stdio: 'pipe' });
  Object.assign(process.env, {
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: prefix,
    CLUSTER_ID: 'e2e',
    KUBECONFIG: inject('functionsKubeconfigPath'),
    STATUS_DELAY_MS: '0',
    LOG_LEVEL: 'silent',
    WORKER_CONCURRENCY: '4',
  });
  scf = createRequire(import.meta.url)(bundle);
});
afterAll(async () => {
  await scf?.resetWarmRuntime();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  redis.disconnect();
});

describe('the SCF bundle', () => {
  it('is CommonJS at Node 18 syntax level (ES2022) and exports main_handler', () => {
    const code = readFileSync(bundle, 'utf8');
    expect(() => parse(code, { ecmaVersion: 2022, sourceType: 'script', allowHashBang: true })).not.toThrow();
    expect(JSON.parse(readFileSync(path.join(path.dirname(bundle), 'package.json'), 'utf8')).type).toBe(
      'commonjs',
    );
    expect(typeof scf.main_handler).toBe('function');
  });

  it('refuses an event it does not understand, naming the problem', async () => {
    await expect(scf.main_handler({ Type: 'Cos' }, context(5000))).rejects.toThrow(/unsupported SCF event/);
    await expect(scf.main_handler(timer(), {})).rejects.toThrow(/time_limit_in_ms/);
  });
});

describe('main_handler on a timer event', () => {
  it('drains queued jobs and converges the cluster', async () => {
    const cr = uniqueName('scf');
    const namespaces = [uniqueName('scf-a'), uniqueName('scf-b'), uniqueName('scf-c')];
    for (const ns of namespaces) await createNamespace(kc, ns);
    for (const ns of namespaces)
      await waitFor('default SA', () =>
        core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }),
      );
    await createCr(kc, cr, { namespaces: namespaces.join(','), docker: docker() });
    try {
      await enqueueJobs(queue, [
        { key: { cluster: 'e2e', kind: 'imagepullsecret', name: cr }, trigger: 'added' },
      ]);
      const started = Date.now();
      // The first invocation fans out; namespace jobs it enqueues are drained in the same invocation.
      const result = await scf.main_handler(timer(), context(20_000));
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(result.stoppedBecause).toBe('empty');
      expect(result.processed).toBeGreaterThanOrEqual(1 + namespaces.length);
      expect(result.failed).toBe(0);
      for (const ns of namespaces) {
        expect(await readSecret(kc, ns, secretNameFor(cr))).toBeDefined();
        expect(await pullSecretsOf(kc, ns, 'default')).toContain(secretNameFor(cr));
      }
    } finally {
      await deleteCr(kc, cr);
      await enqueueJobs(queue, [
        { key: { cluster: 'e2e', kind: 'imagepullsecret', name: cr }, trigger: 'deleted' },
      ]);
      await scf.main_handler(timer(), context(20_000));
    }
  });

  it('the registry-tokens timer runs the fleet token refresher through the same queue', async () => {
    const result = await scf.main_handler(timer('registry-tokens'), context(20_000));
    expect(result).toMatchObject({ stoppedBecause: 'empty', failed: 0 });
    expect(result.processed).toBeGreaterThanOrEqual(1);
    const entries = await listAudit(redis, auditStreamKey(prefix), { cluster: 'fleet' });
    expect(entries.map((e) => `${e.key} ${e.trigger} ${e.outcome}`)).toContain(
      'registry-tokens all @fleet resync success',
    );
  });

  it('returns before its time limit and leaves no job half-claimed', async () => {
    const jobs = Array.from({ length: 300 }, (_, i) => ({
      key: {
        cluster: 'e2e',
        kind: 'namespace' as const,
        name: `absent-${i}-${randomBytes(3).toString('hex')}`,
      },
      trigger: 'resync' as const,
    }));
    await enqueueJobs(queue, jobs);
    const limit = 3_000;
    const started = Date.now();
    const result = await scf.main_handler(timer(), context(limit));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(limit);
    expect(result.stoppedBecause).toBe('time');
    expect(result.processed).toBeGreaterThan(0);
    expect(result.remaining).toBe(300 - result.processed);
    expect(await queue.getActiveCount()).toBe(0);
    // The next invocation picks up where this one stopped.
    const next = await scf.main_handler(timer(), context(60_000));
    expect(next.stoppedBecause).toBe('empty');
    expect(result.processed + next.processed).toBe(300);
  });
});
