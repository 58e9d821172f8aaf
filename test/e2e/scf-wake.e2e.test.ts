import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { auditStreamKey } from '../../functions/adapters/redis-audit.js';
import { privateEndpointsKey } from '../../functions/runtime/schedules.js';
import { SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { buildScfBundle, type DeployedScf, deployScfFunction } from '../../infra/local/scf-runtime.js';
import type { CapturedRequest, TencentEmulator } from '../../infra/tencent-emulator/server.js';
import { startTencentEmulator } from '../../infra/tencent-emulator/server.js';
import { FINALIZER } from '../../shared/contracts/labels.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/contracts/names.js';
import { UPDATER_CONFIG_MAP_NAME } from '../../shared/contracts/updater-config.js';
import { connectRedis, enqueueJobs, openQueue } from '../../shared/queue.js';
import { createCr, deleteCr, docker, readCr } from '../support/crs.js';
import { adminKubeConfig, createNamespace, statusOf, uniqueName } from '../support/kube.js';
import { type RelayProcess, startRelayProcess } from '../support/relay.js';
import { pullSecretsOf } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

// The serverless path for real: relay → Redis → asynchronous Invoke (the relay's own key, CAM-limited to
// scf:Invoke on the function) → the emulator's SCF starts the bundled dist/scf/index.js as SCF does → the
// handler drains the queue → the cluster. Timers (serverless.yml's safety net) are what keeps it going when
// Invoke fails; BullMQ's stalled check in every invocation is what recovers a job from a killed invocation.

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const REGION = 'ap-guangzhou';
const REGISTRY = `tcr-w${randomBytes(3).toString('hex')}`;
/** The functions' own Tencent Cloud key (spec.tcr CRs without credentialsSecretRef). */
const FUNCTIONS_KEY = {
  secretId: `AKIDFN${randomBytes(10).toString('hex').toUpperCase()}`,
  secretKey: `fnKey${randomBytes(16).toString('hex')}`,
};
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

let emulator: TencentEmulator;
const invokeBodies: string[] = [];
const redis = connectRedis(inject('redisUrl'));
const relays: RelayProcess[] = [];
const crs: string[] = [];

interface Scenario {
  prefix: string;
  deployed: DeployedScf;
  relay?: RelayProcess;
}

function deploy(
  name: string,
  prefix: string,
  overrides: Parameters<typeof deployScfFunction>[0]['overrides'],
  { env = {}, concurrency = 3 }: { env?: Record<string, string>; concurrency?: number } = {},
): DeployedScf {
  return deployScfFunction({
    emulator,
    region: REGION,
    concurrency,
    build: false,
    overrides: { name, ...overrides },
    environment: {
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      CLUSTER_ID: 'e2e',
      KUBECONFIG: inject('functionsKubeconfigPath'),
      STATUS_DELAY_MS: '300',
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: '4',
      TENCENTCLOUD_SECRET_ID: FUNCTIONS_KEY.secretId,
      TENCENTCLOUD_SECRET_KEY: FUNCTIONS_KEY.secretKey,
      TENCENTCLOUD_ENDPOINT: emulator.endpoint,
      TENCENTCLOUD_PROTOCOL: 'http://',
      SCF_IDLE_MS: '500',
      SCF_MARGIN_MS: '500',
      SCF_DELAYED_WAIT_MS: '1000',
      ...env,
    },
  });
}

async function startRelay(s: Scenario, extra: Record<string, string> = {}): Promise<RelayProcess> {
  const relay = await startRelayProcess({
    KUBECONFIG: inject('relayKubeconfigPath'),
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: s.prefix,
    CLUSTER_ID: 'e2e',
    LEASE_DURATION_MS: '5000',
    SCF_WAKE_TICK_MS: '200',
    ...s.deployed.relayEnv,
    ...extra,
  });
  relays.push(relay);
  await relay.waitReady(60_000);
  s.relay = relay;
  return relay;
}

async function converged(namespaces: string[], cr: string): Promise<boolean> {
  for (const ns of namespaces) {
    const entries = await pullSecretsOf(kc, ns, 'default').catch((): string[] => []);
    if (!entries.includes(secretNameFor(cr))) return false;
  }
  return true;
}

async function namespacesFor(cr: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, () => uniqueName('scfw'));
  for (const ns of names) await createNamespace(kc, ns, { 'scf-e2e': cr });
  return names;
}

async function removeCr(name: string): Promise<void> {
  const cr = await readCr(kc, name).catch(() => undefined);
  if (!cr) return;
  const index = cr.metadata.finalizers?.indexOf(FINALIZER) ?? -1;
  if (index >= 0)
    await kc.makeApiClient(CustomObjectsApi).patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name,
        body: [{ op: 'remove', path: `/metadata/finalizers/${index}` }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  await deleteCr(kc, name);
}

/** Whether process `pid` has an established TCP connection to 127.0.0.1:`port` (/proc: its sockets' inodes). */
function connectedTo(pid: number, port: number): boolean {
  const remote = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    const sockets = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return ''; // closed while listed
        }
      })();
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode) sockets.add(inode);
    }
    for (const table of ['tcp', 'tcp6']) {
      for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
        // sl local_address rem_address st ... inode (10th field); st 01 = ESTABLISHED
        const f = line.trim().split(/\s+/);
        if (f[2]?.endsWith(remote) && f[3] === '01' && sockets.has(f[9] ?? '')) return true;
      }
    }
  } catch {
    // The process ended: not the one holding the call.
  }
  return false;
}

beforeAll(async () => {
  buildScfBundle();
  emulator = await startTencentEmulator({
    credentials: [FUNCTIONS_KEY],
    registries: [{ registryId: REGISTRY, region: REGION }],
    internalEndpoints: { [REGISTRY]: [{ vpcId: 'vpc-w1', subnetId: 'subnet-w1', accessIp: '10.30.0.7' }] },
    scf: { asyncRetryDelayMs: 500, logDir: process.env.SCF_E2E_LOG_DIR },
    onRequest: (r: CapturedRequest) => {
      if (r.headers['x-tc-action'] === 'Invoke') invokeBodies.push(r.body.toString('utf8'));
    },
  });
});

afterAll(async () => {
  for (const relay of relays) await relay.kill();
  if (process.env.SCF_E2E_LOG_DIR) {
    const { writeFileSync } = await import('node:fs');
    for (const [i, r] of relays.entries())
      writeFileSync(`${process.env.SCF_E2E_LOG_DIR}/relay-${i}.log`, r.output());
    writeFileSync(
      `${process.env.SCF_E2E_LOG_DIR}/invocations.json`,
      JSON.stringify(emulator.scf.invocations(), null, 1),
    );
  }
  // No functions run any more to take the finalizer off: the test does (the CRs' Secrets go with them).
  for (const cr of crs) await removeCr(cr).catch(() => {});
  await emulator?.stop();
  redis.disconnect();
});

describe('the relay wakes SCF', () => {
  const s: Scenario = { prefix: `{scfw${randomBytes(3).toString('hex')}}`, deployed: undefined as never };
  const cr = uniqueName('scf-wake');
  let namespaces: string[] = [];

  beforeAll(async () => {
    // serverless.yml's drain timer, deployed, but firing once a day 12 hours from now: the safety net is
    // there and never fires during the test, so only a wake-up by the relay can explain convergence.
    const farHour = (new Date().getUTCHours() + 12) % 24;
    s.deployed = deploy('tcr-wake-e2e', s.prefix, {
      timers: [{ name: 'drain-queue', cronExpression: `0 0 ${farHour} * * * *`, argument: 'drain' }],
    });
    await startRelay(s);
  });
  afterAll(() => s.relay?.kill());

  // How fast is the benchmark's to say (latency p50/p99 with --runtime scf); this says by what.
  it('a new namespace is served by an invocation the relay woke (an Event), not by a timer', async () => {
    crs.push(cr);
    await createCr(kc, cr, {
      namespaces: '*',
      namespaceSelector: { matchLabels: { 'scf-e2e': cr } },
      docker: docker(PASSWORD),
    });
    namespaces = await namespacesFor(cr, 3);
    await waitFor('namespaces to carry the pull secret', () => converged(namespaces, cr), {
      timeoutMs: 60_000,
    });
    const records = emulator.scf.invocations('tcr-wake-e2e');
    expect(records.length).toBeGreaterThan(0);
    expect(records.filter((r) => r.type !== 'Event')).toEqual([]);
    expect(await s.relay!.metric('tcr_relay_scf_invocations_total')).toBeGreaterThan(0);
    // Each namespace's Secret was created by a job that ran inside one of those Event invocations.
    const audit = await listAudit(redis, auditStreamKey(s.prefix), {});
    for (const ns of namespaces) {
      const object = `Secret ${ns}/${secretNameFor(cr)}`;
      const creation = audit.find(
        (e) => e.outcome === 'success' && e.actions.some((a) => a.verb === 'created' && a.object === object),
      );
      expect(creation, `the audit entry that created ${object}`).toBeDefined();
      const at = Date.parse(creation!.time);
      const by = records.filter(
        (r) => r.startedAt !== undefined && r.startedAt <= at && at <= (r.endedAt ?? Date.now()),
      );
      expect(by.length, `invocations running when ${object} was created`).toBeGreaterThan(0);
      expect(by.every((r) => r.type === 'Event')).toBe(true);
    }
  });

  it('a burst costs a bounded number of invocations (coalesced per slot)', async () => {
    const before = emulator.scf.invocations('tcr-wake-e2e').length;
    const coalescedBefore = await s.relay!.metric('tcr_relay_scf_wakes_coalesced_total');
    const burst = await namespacesFor(cr, 40);
    await waitFor('the burst to converge', () => converged(burst, cr), { timeoutMs: 60_000 });
    const used = emulator.scf.invocations('tcr-wake-e2e').length - before;
    // 40 namespaces, 80+ jobs: a handful of invocations at most (one per slot at a time), not one per job;
    // none at all when the invocation woken before is still draining.
    expect(used).toBeLessThanOrEqual(10);
    // Wake-ups the burst asked for while an invocation was already draining were not made.
    expect(await s.relay!.metric('tcr_relay_scf_wakes_coalesced_total')).toBeGreaterThan(coalescedBefore);
    // Never more instances than the function's concurrency.
    expect(emulator.scf.instances('tcr-wake-e2e').length).toBeLessThanOrEqual(3);
    namespaces.push(...burst);
  });

  it('no credential in the Invoke payload, logs, audit or metrics', async () => {
    const secrets = [
      s.deployed.relaySecretKey,
      s.deployed.relayEnv.SCF_WAKE_SECRET_ID!,
      FUNCTIONS_KEY.secretKey,
      PASSWORD,
      Buffer.from(`100012345678:${PASSWORD}`).toString('base64'),
    ];
    const payloads = invokeBodies.map((b) => JSON.parse(b) as { ClientContext: string });
    expect(payloads.length).toBeGreaterThan(0);
    for (const p of payloads) {
      expect(Object.keys(JSON.parse(p.ClientContext)).sort()).toEqual(['action', 'slot', 'wake']);
    }
    // Every invocation has returned (and logged its summary).
    await waitFor('the invocations to end', () =>
      emulator.scf.invocations('tcr-wake-e2e').every((r) => r.outcome !== undefined),
    );
    const audit = JSON.stringify(await listAudit(redis, auditStreamKey(s.prefix), {}));
    expect(audit.length).toBeGreaterThan(100);
    const haystacks = {
      invokePayloads: invokeBodies.join('\n'),
      relayLog: s.relay!.output(),
      relayMetrics: await s.relay!.metrics(),
      functionLog: emulator.scf.logs('tcr-wake-e2e'),
      audit,
    };
    // Each haystack holds what it should (a scan of an empty text proves nothing).
    expect(haystacks.functionLog).toContain('scf invocation done');
    expect(haystacks.relayLog).toContain('SCF wake-ups on');
    expect(haystacks.relayMetrics).toContain('tcr_relay_scf_invocations_total');
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets)
        expect(text.includes(secret), `${where} contains a credential`).toBe(false);
    }
  });
});

describe('Invoke failing', () => {
  const s: Scenario = { prefix: `{scff${randomBytes(3).toString('hex')}}`, deployed: undefined as never };
  const cr = uniqueName('scf-fail');

  beforeAll(async () => {
    // The safety net at test speed: a drain timer every two seconds.
    s.deployed = deploy('tcr-fail-e2e', s.prefix, {
      timers: [{ name: 'drain-queue', cronExpression: '*/2 * * * * * *', argument: 'drain' }],
    });
  });
  afterAll(() => s.relay?.kill());

  it('throttling, then InternalError: the timers still converge everything; the relay counts the failures', async () => {
    emulator.injectFault({ action: 'Invoke', code: 'RequestLimitExceeded', times: 3 });
    emulator.injectFault({ action: 'Invoke', code: 'InternalError', times: Number.POSITIVE_INFINITY });
    const relay = await startRelay(s, { SCF_WAKE_BACKOFF_MS: '50', SCF_WAKE_BACKOFF_CAP_MS: '400' });
    crs.push(cr);
    await createCr(kc, cr, {
      namespaces: '*',
      namespaceSelector: { matchLabels: { 'scf-e2e': cr } },
      docker: docker(PASSWORD),
    });
    const bothCounted = async () =>
      (await relay.metric('tcr_relay_scf_invoke_errors_total', { code: 'RequestLimitExceeded' })) >= 3 &&
      (await relay.metric('tcr_relay_scf_invoke_errors_total', { code: 'InternalError' })) >= 1;
    // Namespaces keep arriving until the relay has met both faults: the relay only retries while jobs wait,
    // and a timer can drain a short burst before the fourth attempt (this failed once with 5 at once).
    const namespaces: string[] = [];
    while (namespaces.length < 5 || (namespaces.length < 40 && !(await bothCounted()))) {
      namespaces.push(...(await namespacesFor(cr, 1)));
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor('the timers to converge the namespaces', () => converged(namespaces, cr), {
      timeoutMs: 60_000,
    });
    await waitFor('both failure kinds counted', bothCounted);
    expect(await relay.metric('tcr_relay_scf_invocations_total')).toBe(0);
    // Every execution was a timer's; the relay kept enqueueing (it is ready, and its jobs were run).
    const records = emulator.scf.invocations('tcr-fail-e2e');
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.type === 'Timer')).toBe(true);
    expect(await relay.ready()).toBe(true);
    expect(await relay.metric('tcr_relay_jobs_enqueued_total')).toBeGreaterThan(0);
    // One line per condition, not one per failed attempt.
    const warnings = relay
      .output()
      .split('\n')
      .filter((l) => l.includes('SCF Invoke failed'));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(3);
    emulator.clearFaults();
    // Relay start (60 s), up to 40 namespaces, then 60 s + 30 s of waits: above the 120 s default, so that a
    // slow wait names what it awaited.
  }, 300_000);
});

describe('an invocation killed by its time limit in the middle of a job', () => {
  const s: Scenario = { prefix: `{scfk${randomBytes(3).toString('hex')}}`, deployed: undefined as never };
  const cr = uniqueName('scf-kill');
  const LIMIT_S = 4;
  const LOCK_MARGIN_MS = 1000;
  /** Lock = time limit + margin; the stalled check runs that often. */
  const INTERVAL_MS = LIMIT_S * 1000 + LOCK_MARGIN_MS;

  const readConfigMap = () =>
    core
      .readNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
      .catch((error: unknown) => {
        if (statusOf(error) === 404) return undefined;
        throw error;
      });

  beforeAll(async () => {
    await core
      .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
      .catch(() => {});
    // A timer every second: invocations keep coming, each runs the stalled check. Two instances, so that
    // while the victim below is frozen other invocations run beside it and could take its job if its lock
    // expired before SCF killed it (with one instance, "never twice at once" would hold trivially).
    s.deployed = deploy(
      'tcr-kill-e2e',
      s.prefix,
      {
        timeoutSeconds: LIMIT_S,
        timers: [{ name: 'drain-queue', cronExpression: '* * * * * * *', argument: 'drain' }],
      },
      { env: { SCF_LOCK_MARGIN_MS: String(LOCK_MARGIN_MS) }, concurrency: 2 },
    );
  });

  afterAll(async () => {
    await core
      .deleteNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, name: UPDATER_CONFIG_MAP_NAME })
      .catch(() => {});
  });

  it('is finished by a later invocation within two stalled-check intervals; nothing lost, nothing run twice at once', async () => {
    crs.push(cr);
    // A CR that wants private-network resolving: the refresh job asks TCR for the instance's endpoints.
    await createCr(kc, cr, {
      namespaces: 'nothing-matches-this',
      docker: { server: `${REGISTRY}.tencentcloudcr.com` },
      tcr: { registryId: REGISTRY, region: REGION },
      privateNetwork: { enabled: true },
    });
    // TCR answers the first DescribeInternalEndpoints only after 30 s: the job is mid-flight, waiting.
    emulator.injectDelay({ action: 'DescribeInternalEndpoints', ms: 30_000, times: 1 });
    const calls = () => emulator.callLog().filter((c) => c.action === 'DescribeInternalEndpoints');
    await enqueueJobs(openQueue(redis, { prefix: s.prefix, attempts: 8, backoffMs: 500 }), [
      { key: privateEndpointsKey('e2e'), trigger: 'resync' },
    ]);
    await waitFor('the job to call TCR', () => calls().length >= 1, { timeoutMs: 30_000, intervalMs: 10 });
    // Freeze the instance in the middle of the job (a stall no deadline can interrupt): only SCF's time
    // limit ends it. The victim: the running invocation whose instance holds the connection to TCR.
    const emulatorPort = Number(emulator.endpoint.split(':').pop());
    const running = emulator.scf
      .invocations('tcr-kill-e2e')
      .filter((r) => r.startedAt && !r.endedAt && r.pid !== undefined && connectedTo(r.pid, emulatorPort));
    expect(running).toHaveLength(1);
    const victim = running[0]!;
    process.kill(victim.pid!, 'SIGSTOP');
    await waitFor('the time limit to kill it', () => victim.outcome === 'timeout', { timeoutMs: 10_000 });
    const killedAt = victim.endedAt!;
    await waitFor('the killed instance to be gone', () => {
      try {
        process.kill(victim.pid!, 0);
        return false;
      } catch {
        return true;
      }
    });

    const cm = await waitFor('the ConfigMap from the recovered job', readConfigMap, {
      timeoutMs: 4 * INTERVAL_MS,
      intervalMs: 50,
    });
    const doneAt = Date.now();
    expect(JSON.parse(cm.data?.hosts ?? '[]')).toEqual(
      expect.arrayContaining([expect.objectContaining({ ip: '10.30.0.7' })]),
    );
    expect(doneAt - killedAt).toBeLessThanOrEqual(2 * INTERVAL_MS + 1500);
    // Nothing ran twice at once: the only run that finished started after the killed one was gone.
    const entries = (await listAudit(redis, auditStreamKey(s.prefix), {})).filter((e) =>
      e.key.startsWith('private-endpoints'),
    );
    // (A recovered run cut short by its own 1 s deadline on a loaded machine is retried like any other: such
    // retries may precede the success, all of them after the kill too.)
    expect(entries.at(-1)?.outcome).toBe('success');
    expect(
      entries
        .slice(0, -1)
        .map((e) => `${e.outcome} ${e.error ?? ''}`)
        .filter((r) => !/^retry .*deadline/.test(r)),
    ).toEqual([]);
    for (const e of entries) expect(Date.parse(e.time)).toBeGreaterThanOrEqual(killedAt);
    expect(calls().length).toBeGreaterThanOrEqual(2);
    expect(calls().length).toBeLessThanOrEqual(1 + entries.length);
    expect(calls()[1]!.at).toBeGreaterThanOrEqual(killedAt);
    // A later invocation's stalled check gave it back; it is not failed, and nothing is left active.
    expect(emulator.scf.logs('tcr-kill-e2e')).toContain('stalled job');
    const queue = openQueue(redis, { prefix: s.prefix, attempts: 8, backoffMs: 500 });
    await waitFor('no job left active', async () => (await queue.getActiveCount()) === 0);
    expect(await queue.getFailedCount()).toBe(0);
  });

  it('a job past its deadline is cut short (its TCR request cancelled) and retried, never left active', async () => {
    const before = (await listAudit(redis, auditStreamKey(s.prefix), {})).length;
    const calls = () => emulator.callLog().filter((c) => c.action === 'DescribeInternalEndpoints');
    const callsBefore = calls().length;
    // Slower than the job's deadline (a quarter of the 4 s limit), faster than the time limit.
    emulator.injectDelay({ action: 'DescribeInternalEndpoints', ms: 2500, times: 1 });
    const queue = openQueue(redis, { prefix: s.prefix, attempts: 8, backoffMs: 500 });
    await enqueueJobs(queue, [{ key: privateEndpointsKey('e2e'), trigger: 'resync' }]);
    const entries = await waitFor(
      'a retry, then a success',
      async () => {
        const all = (await listAudit(redis, auditStreamKey(s.prefix), {})).slice(before);
        return all.some((e) => e.outcome === 'success') ? all : undefined;
      },
      { timeoutMs: 30_000 },
    );
    // The slowed attempt was cut at its deadline and retried, and a retry succeeded. A retry may itself run
    // past the 1 s deadline on a loaded machine (it lists CRs, asks TCR, reads and writes the ConfigMap):
    // then it is cut short the same way, and counted so.
    expect(entries.at(-1)?.outcome).toBe('success');
    const retries = entries.slice(0, -1);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(
      retries.map((e) => `${e.outcome} ${e.error ?? ''}`).filter((r) => !/^retry .*deadline/.test(r)),
    ).toEqual([]);
    expect(entries[0]?.durationMs).toBeLessThan(1500);
    // The cut-short call and the successful one, and at most one per attempt (a retry cut short before it
    // reached TCR makes none).
    expect(calls().length - callsBefore).toBeGreaterThanOrEqual(2);
    expect(calls().length - callsBefore).toBeLessThanOrEqual(entries.length);
    // The invocation that cut the job short ended normally: nothing was killed this time.
    expect(emulator.scf.invocations('tcr-kill-e2e').filter((r) => r.outcome === 'timeout')).toHaveLength(1);
    expect(await queue.getActiveCount()).toBe(0);
  });
});
