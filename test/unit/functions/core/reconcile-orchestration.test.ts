import { describe, expect, it } from 'vitest';
import { reconcileImagePullSecret } from '../../../../functions/core/image-pull-secret/reconcile-image-pull-secret.js';
import { isNoop, planNamespace } from '../../../../functions/core/namespace/plan-namespace.js';
import { reconcileNamespace } from '../../../../functions/core/namespace/reconcile-namespace.js';
import { reconcileServiceAccount } from '../../../../functions/core/namespace/reconcile-service-account.js';
import { desiredSecretFor } from '../../../../functions/core/pull-secret/desired-secret.js';
import { renderDockerConfigJson } from '../../../../functions/core/pull-secret/docker-config.js';
import { type JobContext, type RunJobDeps, runJob } from '../../../../functions/core/run-job.js';
import type { JobKey } from '../../../../shared/contracts/jobs.js';
import {
  CR_NAME_ANNOTATION,
  CR_UID_LABEL,
  FINALIZER,
  SKIP_ANNOTATION,
} from '../../../../shared/contracts/labels.js';
import { SECRET_PREFIX, secretNameFor } from '../../../../shared/contracts/names.js';
import { DeadlineExceededError } from '../../../../shared/deadline.js';
import { RetryableError, TerminalError } from '../../../../shared/errors.js';
import {
  CLUSTER_ID,
  crView,
  dockerCreds,
  FakeAudit,
  FakeCluster,
  foreignSecretView,
  type Harness,
  harness,
  nsView,
  ourSecretView,
  saView,
} from '../../../support/fake-cluster.js';

const NS = 'team-a';
const PW = 'Sup3r-Secret-Pa55word-XYZZY';
const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(secretNameFor) as [
  string,
  string,
  string,
  string,
  string,
];

/**
 * One namespace needing every kind of write: create (a, b), update (e: rotated password), entries added and
 * removed on two ServiceAccounts, deletes (c: CR deleting, d: namespaces narrowed away). 7 write calls.
 */
function seedScenario(fake: FakeCluster): FakeCluster {
  fake.addNamespace(nsView(NS)).addNamespace(nsView('elsewhere'));
  fake
    .addCr(crView('a', { password: PW }))
    .addCr(crView('b', { serviceAccounts: 'builder', password: PW }))
    .addCr(crView('c', { deleting: true }))
    .addCr(crView('d', { namespaces: 'elsewhere' }))
    .addCr(crView('e', { password: PW }));
  fake
    .addSecret(ourSecretView(crView('c'), NS))
    .addSecret(ourSecretView(crView('d'), NS))
    .addSecret(ourSecretView(crView('e', { password: 'old' }), NS));
  fake
    .addServiceAccount(saView(NS, 'default', ['my-registry', C, D, E]))
    .addServiceAccount(saView(NS, 'builder', [C, D, E]));
  return fake;
}
const SCENARIO_WRITES = 7;

/** it.each rows titled by their own `title` (printed in full, unlike `$title`). */
const titled = <T extends { title: string }>(rows: T[]): [string, T][] => rows.map((r) => [r.title, r]);

/** Entries that name a tcr.ips… Secret which does not exist in the ServiceAccount's namespace. */
function danglingEntries(fake: FakeCluster): string[] {
  return [...fake.serviceAccounts.values()].flatMap((sa) =>
    sa.imagePullSecrets
      .filter((e) => e.startsWith(SECRET_PREFIX) && !fake.secret(sa.namespace, e))
      .map((e) => `${sa.namespace}/${sa.name} → ${e}`),
  );
}

async function planOf(fake: FakeCluster, ns: string) {
  return planNamespace(ns, {
    namespace: await fake.getNamespace(ns),
    crs: await fake.listImagePullSecrets(),
    ourSecrets: await fake.listOurSecrets(ns),
    serviceAccounts: await fake.listServiceAccounts(ns),
  });
}

describe('reconcileNamespace', () => {
  it('converges in one run; a second run makes zero write calls and enqueues nothing', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    const result = await reconcileNamespace(h.deps, NS);

    expect(h.cluster.writeCalls()).toBe(SCENARIO_WRITES);
    expect(h.cluster.callsOf('deleteSecret')).toBe(2);
    expect(h.cluster.snapshot().secrets.map((s) => s.key)).toEqual([
      `${NS}/${A}`,
      `${NS}/${B}`,
      `${NS}/${E}`,
    ]);
    expect(h.cluster.secret(NS, E)?.data).toEqual(desiredSecretFor(crView('e', { password: PW }), NS).data);
    expect(h.cluster.pullSecretsOf(NS, 'default')).toEqual(['my-registry', E, A]);
    expect(h.cluster.pullSecretsOf(NS, 'builder')).toEqual([E, A, B]);
    expect(result.crs).toEqual(['a', 'b', 'e']);
    expect(result.actions.map((x) => `${x.verb} ${x.object}`).sort()).toEqual(
      [
        `created Secret ${NS}/${A}`,
        `created Secret ${NS}/${B}`,
        `updated Secret ${NS}/${E}`,
        `patched ServiceAccount ${NS}/default`,
        `patched ServiceAccount ${NS}/builder`,
        `deleted Secret ${NS}/${C}`,
        `deleted Secret ${NS}/${D}`,
      ].sort(),
    );
    // One coalesced (delayed) status refresh per CR the plan touched.
    expect(h.queue.items).toEqual(
      ['a', 'b', 'c', 'd', 'e'].map((name) => ({
        key: { cluster: CLUSTER_ID, kind: 'imagepullsecret-status', name },
        trigger: 'status',
        delayMs: h.deps.statusDelayMs,
      })),
    );
    expect(isNoop(await planOf(h.cluster, NS))).toBe(true);

    h.cluster.resetCounts();
    const batches = h.queue.batches.length;
    const again = await reconcileNamespace(h.deps, NS);
    expect(h.cluster.writeCalls()).toBe(0);
    expect(h.queue.batches.length).toBe(batches);
    expect(again.actions.every((x) => x.verb === 'noop')).toBe(true);
  });

  it('writes in crash-safe order: Secrets, then ServiceAccount patches, then deletes', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    await reconcileNamespace(h.deps, NS);
    const methods = h.cluster.writeLog.map((w) => w.split(' ')[0]);
    expect(methods).toEqual([
      'createSecret',
      'createSecret',
      'replaceSecret',
      'patchServiceAccountPullSecrets',
      'patchServiceAccountPullSecrets',
      'deleteSecret',
      'deleteSecret',
    ]);
  });

  it.each(Array.from({ length: SCENARIO_WRITES }, (_, n) => n))(
    `crash after %i of ${SCENARIO_WRITES} writes, then a clean run: same state as an uninterrupted run, never a dangling entry`,
    async (n) => {
      const reference = harness(seedScenario(new FakeCluster()));
      await reconcileNamespace(reference.deps, NS);
      const expected = reference.cluster.snapshot();

      const h = harness(seedScenario(new FakeCluster()));
      expect(danglingEntries(h.cluster)).toEqual([]);
      h.cluster.crashAfterWrites(n);
      await expect(reconcileNamespace(h.deps, NS)).rejects.toThrow(/simulated crash/);
      expect(h.cluster.mutations).toBe(n);
      expect(danglingEntries(h.cluster)).toEqual([]);
      // A crash is retryable and not the final attempt: no failure is recorded for the status.
      expect(await h.failures.list(CLUSTER_ID, 'a')).toEqual([]);

      h.cluster.clearFaults();
      await reconcileNamespace(h.deps, NS);
      expect(h.cluster.snapshot()).toEqual(expected);
      expect(danglingEntries(h.cluster)).toEqual([]);

      h.cluster.resetCounts();
      await reconcileNamespace(h.deps, NS);
      expect(h.cluster.writeCalls()).toBe(0);
    },
  );

  it('a concurrent change to a Secret it updates: 409 → RetryableError; the retry re-reads and converges', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    let raced = false;
    h.cluster.beforeWrite((method) => {
      if (method !== 'replaceSecret' || raced) return;
      raced = true;
      const e = h.cluster.secrets.get(`${NS}/${E}`);
      if (e) e.resourceVersion = 'someone-else-wrote';
    });
    const error = await reconcileNamespace(h.deps, NS).catch((x: unknown) => x);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(/HTTP 409/);
    expect(danglingEntries(h.cluster)).toEqual([]);
    await reconcileNamespace(h.deps, NS);
    expect(isNoop(await planOf(h.cluster, NS))).toBe(true);
  });

  it('a concurrent writer adding an entry between read and patch: both entries survive', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    let raced = false;
    h.cluster.beforeWrite((method) => {
      if (method !== 'patchServiceAccountPullSecrets' || raced) return;
      raced = true;
      h.cluster.editServiceAccount(NS, 'default', (sa) => sa.imagePullSecrets.push('their-new-entry'));
    });
    await reconcileNamespace(h.deps, NS);
    expect(h.cluster.serviceAccountPatchConflicts).toBe(1);
    expect(h.cluster.pullSecretsOf(NS, 'default')).toEqual(['my-registry', E, 'their-new-entry', A]);
  });

  it('a foreign Secret of our name: reported as conflict, never changed, no entry added for it', async () => {
    const h = harness();
    h.cluster
      .addNamespace(nsView(NS))
      .addCr(crView('a'))
      .addSecret(foreignSecretView(NS, A))
      .addServiceAccount(saView(NS, 'default'));
    const before = h.cluster.snapshot();
    const result = await reconcileNamespace(h.deps, NS);
    expect(result.actions).toContainEqual(
      expect.objectContaining({ verb: 'conflict', object: `Secret ${NS}/${A}` }),
    );
    expect(h.cluster.mutations).toBe(0);
    expect(h.cluster.snapshot()).toEqual(before);
    // The planner only sees our Secrets, so each run tries the create once more (and changes nothing).
    h.cluster.resetCounts();
    await reconcileNamespace(h.deps, NS);
    expect(h.cluster.callsOf('createSecret')).toBe(1);
    expect(h.cluster.mutations).toBe(0);
  });

  it.each([
    ['missing', undefined, 'namespace-not-found'],
    ['terminating', nsView(NS, { terminating: true }), 'namespace-terminating'],
  ] as const)('namespace %s: skipped with zero writes', async (_title, namespace, skipped) => {
    const h = harness();
    if (namespace) h.cluster.addNamespace(namespace);
    h.cluster.addCr(crView('a')).addSecret(ourSecretView(crView('a', { deleting: true }), NS));
    const result = await reconcileNamespace(h.deps, NS);
    expect(result.skipped).toBe(skipped);
    expect(h.cluster.writeCalls()).toBe(0);
    expect(h.queue.items).toEqual([]);
  });

  it('namespace deleted between read and create: the rest of the plan is skipped', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    h.cluster.beforeWrite((method) => {
      if (method === 'createSecret') h.cluster.namespaces.set(NS, nsView(NS, { terminating: true }));
    });
    const result = await reconcileNamespace(h.deps, NS);
    expect(result.actions).toContainEqual(
      expect.objectContaining({ verb: 'skipped', object: `Secret ${NS}/${A}` }),
    );
    expect(h.cluster.callsOf('patchServiceAccountPullSecrets')).toBe(0);
    expect(h.cluster.callsOf('deleteSecret')).toBe(0);
  });
});

describe('reconcileServiceAccount', () => {
  it.each(
    titled<{
      title: string;
      seed: (f: FakeCluster) => void;
      sa: string;
      entries: string[];
      namespaceJob: boolean;
    }>([
      {
        title:
          'entries naming Secrets to delete: removed from this ServiceAccount only, Secrets kept, namespace job enqueued',
        seed: (f) => seedScenario(f),
        sa: 'default',
        entries: ['my-registry', E, A],
        namespaceJob: true,
      },
      {
        title: 'new ServiceAccount in a converged namespace: entry added, no namespace job',
        seed: (f) => {
          f.addNamespace(nsView(NS))
            .addCr(crView('a'))
            .addSecret(ourSecretView(crView('a'), NS));
          f.addServiceAccount(saView(NS, 'default', [A])).addServiceAccount(saView(NS, 'new-sa'));
        },
        sa: 'new-sa',
        entries: [A],
        namespaceJob: false,
      },
      {
        title:
          'ServiceAccount newly skip-annotated: our entry removed, Secret kept for the others, no namespace job',
        seed: (f) => {
          f.addNamespace(nsView(NS))
            .addCr(crView('a'))
            .addSecret(ourSecretView(crView('a'), NS));
          f.addServiceAccount(
            saView(NS, 'default', ['mine', A], { annotations: { [SKIP_ANNOTATION]: 'true' } }),
          );
        },
        sa: 'default',
        entries: ['mine'],
        namespaceJob: false,
      },
    ]),
  )('%s', async (_title, { seed, sa, entries, namespaceJob }) => {
    const h = harness();
    seed(h.cluster);
    const secretsBefore = h.cluster.snapshot().secrets.map((s) => s.key);
    const othersBefore = h.cluster.snapshot().serviceAccounts.filter((x) => x.key !== `${NS}/${sa}`);

    await reconcileServiceAccount(h.deps, NS, sa);

    expect(h.cluster.callsOf('deleteSecret')).toBe(0);
    expect(h.cluster.snapshot().secrets.map((s) => s.key)).toEqual(expect.arrayContaining(secretsBefore));
    expect(h.cluster.pullSecretsOf(NS, sa)).toEqual(entries);
    expect(h.cluster.snapshot().serviceAccounts.filter((x) => x.key !== `${NS}/${sa}`)).toEqual(othersBefore);
    expect(danglingEntries(h.cluster)).toEqual([]);
    const nsJobs = h.queue.items.filter((i) => i.key.kind === 'namespace');
    expect(nsJobs).toEqual(
      namespaceJob ? [{ key: { cluster: CLUSTER_ID, kind: 'namespace', name: NS }, trigger: 'fanout' }] : [],
    );
  });

  it('the namespace job it enqueues then deletes the Secrets and converges the namespace', async () => {
    const h = harness(seedScenario(new FakeCluster()));
    await reconcileServiceAccount(h.deps, NS, 'default');
    expect(h.queue.keys()).toContain(`namespace ${NS}`);
    await reconcileNamespace(h.deps, NS);
    expect(h.cluster.secret(NS, C)).toBeUndefined();
    expect(h.cluster.secret(NS, D)).toBeUndefined();
    expect(isNoop(await planOf(h.cluster, NS))).toBe(true);
  });

  it('converged ServiceAccount: zero writes, nothing enqueued', async () => {
    const h = harness();
    h.cluster
      .addNamespace(nsView(NS))
      .addCr(crView('a'))
      .addSecret(ourSecretView(crView('a'), NS));
    h.cluster.addServiceAccount(saView(NS, 'default', [A]));
    await reconcileServiceAccount(h.deps, NS, 'default');
    expect(h.cluster.writeCalls()).toBe(0);
    expect(h.queue.items).toEqual([]);
  });

  it.each([
    ['namespace missing', false, true, 'namespace-not-found'],
    ['ServiceAccount missing', true, false, 'serviceaccount-not-found'],
  ] as const)('%s: skipped, zero writes', async (_t, withNs, withSa, skipped) => {
    const h = harness();
    h.cluster.addCr(crView('a'));
    if (withNs) h.cluster.addNamespace(nsView(NS));
    if (withSa) h.cluster.addServiceAccount(saView(NS, 'default'));
    const result = await reconcileServiceAccount(h.deps, NS, 'default');
    expect(result.skipped).toBe(skipped);
    expect(h.cluster.writeCalls()).toBe(0);
  });
});

describe('reconcileImagePullSecret', () => {
  /** 5,000 namespaces for CR a, by i % 4: converged, skipped with our Secret, no Secret, foreign Secret. */
  function fleet(): { h: Harness; expected: string[] } {
    const h = harness();
    const a = crView('a');
    h.cluster.addCr(a);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const name = `ns-${String(i).padStart(4, '0')}`;
      const kind = i % 4;
      h.cluster.addNamespace(nsView(name, kind === 1 ? { annotations: { [SKIP_ANNOTATION]: 'true' } } : {}));
      if (kind === 0 || kind === 1) h.cluster.addSecret(ourSecretView(a, name));
      if (kind === 3) h.cluster.addSecret(foreignSecretView(name, A));
      h.cluster.addServiceAccount(saView(name, 'default', kind === 0 || kind === 1 ? [A] : []));
      if (kind === 1 || kind === 2) expected.push(name);
    }
    return { h, expected };
  }

  it('fan-out: one namespace job for exactly each non-converged namespace, in chunks of at most 1000', async () => {
    const { h, expected } = fleet();
    await reconcileImagePullSecret(h.deps, 'a', { fanOut: true });
    expect(h.queue.batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
    const items = h.queue.items;
    expect(items.every((i) => i.key.kind === 'namespace' && i.trigger === 'fanout')).toBe(true);
    expect(items.every((i) => i.key.cluster === CLUSTER_ID && i.delayMs === undefined)).toBe(true);
    expect(items.map((i) => i.key.name)).toEqual(expected);
    expect(h.cluster.callsOf('writeStatus')).toBe(1);
    expect(h.cluster.crs.get('a')?.status).toMatchObject({ secretsDesired: 3750, secretsSuccess: 1250 });
    expect(h.cluster.callsOf('createSecret') + h.cluster.callsOf('deleteSecret')).toBe(0);
  });

  it('fan-out of a resync run: its namespace jobs carry `resync` (they read live, not from the worker view)', async () => {
    const { h, expected } = fleet();
    await reconcileImagePullSecret({ ...h.deps, trigger: 'resync' }, 'a', { fanOut: true });
    const nsJobs = h.queue.items.filter((i) => i.key.kind === 'namespace');
    expect(nsJobs.map((i) => i.key.name)).toEqual(expected);
    expect(nsJobs.every((i) => i.trigger === 'resync')).toBe(true);
  });

  it('without fan-out (status refresh): enqueues nothing, still writes status and events', async () => {
    const { h } = fleet();
    await reconcileImagePullSecret(h.deps, 'a', { fanOut: false });
    expect(h.queue.batches).toEqual([]);
    expect(h.cluster.callsOf('writeStatus')).toBe(1);
    expect(h.cluster.events.map((e) => e.event.reason)).toEqual(['Conflict']);
  });

  it('converged CR with current status: zero writes, nothing enqueued', async () => {
    const h = harness();
    h.cluster
      .addNamespace(nsView(NS))
      .addCr(crView('a'))
      .addSecret(ourSecretView(crView('a'), NS));
    h.cluster.addServiceAccount(saView(NS, 'default', [A]));
    await reconcileImagePullSecret(h.deps, 'a', { fanOut: true });
    h.cluster.resetCounts();
    await reconcileImagePullSecret(h.deps, 'a', { fanOut: true });
    expect(h.cluster.writeCalls()).toBe(0);
    expect(h.queue.batches).toEqual([]);
  });

  it('a new CR gets the finalizer before any namespace job is enqueued', async () => {
    const h = harness();
    h.cluster.addNamespace(nsView(NS)).addCr(crView('a', { finalizers: [] }));
    const enqueue = h.queue.enqueue.bind(h.queue);
    h.deps.queue = {
      enqueue: async (items) => {
        h.cluster.writeLog.push('enqueue');
        await enqueue(items);
      },
    };
    await reconcileImagePullSecret(h.deps, 'a', { fanOut: true });
    expect(h.cluster.writeLog.slice(0, 2)).toEqual(['setFinalizer a true', 'enqueue']);
    expect(h.cluster.crs.get('a')?.finalizers).toEqual([FINALIZER]);
  });

  it('an invalid CR: status InvalidSpec written, then a TerminalError naming the problem', async () => {
    const h = harness();
    h.cluster
      .addNamespace(nsView(NS))
      .addCr(crView('a', { invalid: 'spec.docker.server: must not be empty' }));
    await expect(reconcileImagePullSecret(h.deps, 'a', { fanOut: true })).rejects.toThrow(
      new TerminalError('ImagePullSecret a cannot be planned: spec.docker.server: must not be empty'),
    );
    expect(h.cluster.crs.get('a')?.status.conditions?.[0]).toMatchObject({ reason: 'InvalidSpec' });
  });

  it('a CR that no longer exists: skipped, zero writes', async () => {
    const h = harness();
    const result = await reconcileImagePullSecret(h.deps, 'gone', { fanOut: true });
    expect(result.skipped).toBe('imagepullsecret-not-found');
    expect(h.cluster.writeCalls()).toBe(0);
  });

  it.each([
    [0, true],
    [1, true],
    [2, false],
  ])(
    'deleting CR, %i of 2 namespaces cleaned up: status job keeps the finalizer: %s',
    async (cleaned, kept) => {
      const h = harness();
      const a = crView('a');
      h.cluster.addCr(a);
      for (const ns of ['ns-1', 'ns-2', 'ns-3']) h.cluster.addNamespace(nsView(ns));
      h.cluster.addSecret(ourSecretView(a, 'ns-1')).addSecret(ourSecretView(a, 'ns-2'));
      h.cluster.addSecret(foreignSecretView('ns-3', A));
      h.cluster.addServiceAccount(saView('ns-1', 'default', [A]));
      h.cluster.deleteCr('a');

      for (const ns of ['ns-1', 'ns-2'].slice(0, cleaned)) await reconcileNamespace(h.deps, ns);
      const queued = h.queue.batches.length;
      h.cluster.resetCounts();
      await reconcileImagePullSecret(h.deps, 'a', { fanOut: false });

      expect(h.queue.batches.length).toBe(queued);
      expect(h.cluster.callsOf('writeStatus')).toBe(0);
      expect(h.cluster.crs.has('a')).toBe(kept);
      expect(h.cluster.callsOf('setFinalizer')).toBe(kept ? 0 : 1);
      expect(h.cluster.secret('ns-3', A)?.ours).toBe(false);
      expect(h.cluster.pullSecretsOf('ns-1', 'default')).toEqual(cleaned >= 1 ? [] : [A]);
    },
  );
});

// ---- runJob: the one entry point every runtime calls -------------------------------------------------------

function runDeps(h: Harness, audit: FakeAudit, observed: string[] = []): RunJobDeps {
  return {
    audit,
    now: () => new Date('2025-01-02T03:04:05.678Z'),
    observer: { finished: (kind, outcome) => observed.push(`${kind} ${outcome}`) },
    depsFor(cluster, job) {
      if (cluster !== h.cluster.clusterId) throw new TerminalError(`unknown cluster "${cluster}"`);
      return { ...h.deps, isFinalAttempt: job.attempt >= job.maxAttempts };
    },
  };
}

const payloadOf = (key: JobKey, trigger = 'cli') => ({ v: 1, key, trigger, at: 1_700_000_000_000 });
const nsKey: JobKey = { cluster: CLUSTER_ID, kind: 'namespace', name: NS };

interface FailureRow {
  title: string;
  makeError: () => Error;
  attempt: number;
  maxAttempts: number;
  outcome: 'retry' | 'failed';
  reason?: string;
}

describe('runJob', () => {
  const valid = payloadOf(nsKey);
  it.each<[string, unknown, RegExp]>([
    ['not an object', null, /\(payload\): .*expected object/],
    ['empty object', {}, /v: .*; key: .*; trigger: .*; at: /],
    ['wrong version', { ...valid, v: 2 }, /\bv: Invalid input: expected 1/],
    [
      'cluster not a DNS label',
      { ...valid, key: { ...nsKey, cluster: 'Bad_Cluster' } },
      /key\.cluster: must be a lower-case DNS label/,
    ],
    ['unknown kind', { ...valid, key: { ...nsKey, kind: 'pod' } }, /key\.kind: /],
    [
      'serviceaccount without namespace',
      { ...valid, key: { cluster: CLUSTER_ID, kind: 'serviceaccount', name: 'default' } },
      /key\.namespace: /,
    ],
    [
      'object name invalid',
      { ...valid, key: { ...nsKey, name: 'Team_A' } },
      /key\.name: must be a Kubernetes object name/,
    ],
    ['unknown trigger', { ...valid, trigger: 'sometimes' }, /trigger: Invalid option/],
    ['negative time', { ...valid, at: -1 }, /at: /],
    ['extra field', { ...valid, password: PW }, /Unrecognized key: "password"/],
  ])(
    'malformed payload (%s) → TerminalError naming the field, audited as failed',
    async (_t, payload, field) => {
      const h = harness();
      const audit = new FakeAudit();
      const observed: string[] = [];
      const job: JobContext = { attempt: 3, maxAttempts: 5, jobId: 'job-42' };
      const error = await runJob(runDeps(h, audit, observed), payload, job).catch((x: unknown) => x);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as Error).message).toMatch(/^invalid job payload: /);
      expect((error as Error).message).toMatch(field);
      expect((error as Error).message).not.toContain(PW);
      expect(audit.entries).toEqual([
        expect.objectContaining({
          kind: 'invalid',
          outcome: 'failed',
          attempt: 3,
          jobId: 'job-42',
          actions: [],
          error: (error as Error).message,
        }),
      ]);
      expect(observed).toEqual(['invalid failed']);
      expect(h.cluster.writeCalls()).toBe(0);
    },
  );

  it.each(
    titled(
      (
        [
          {
            title: 'TerminalError on attempt 1 of 5',
            makeError: () => new TerminalError('create secrets: HTTP 403: forbidden'),
            attempt: 1,
            maxAttempts: 5,
            outcome: 'failed',
            reason: 'Failed',
          },
          {
            title: 'TerminalError on the last attempt',
            makeError: () => new TerminalError('create secrets: HTTP 403: forbidden'),
            attempt: 5,
            maxAttempts: 5,
            outcome: 'failed',
            reason: 'Failed',
          },
          {
            title: 'RetryableError on attempt 1 of 5',
            makeError: () => new RetryableError('create secrets: HTTP 503: unavailable'),
            attempt: 1,
            maxAttempts: 5,
            outcome: 'retry',
          },
          {
            title: 'RetryableError on attempt 4 of 5',
            makeError: () => new RetryableError('create secrets: HTTP 429: slow down'),
            attempt: 4,
            maxAttempts: 5,
            outcome: 'retry',
          },
          {
            title: 'RetryableError on the last attempt',
            makeError: () => new RetryableError('create secrets: HTTP 503: unavailable'),
            attempt: 5,
            maxAttempts: 5,
            outcome: 'failed',
            reason: 'RetriesExhausted',
          },
          {
            title: 'plain Error (network) on attempt 2 of 5',
            makeError: () => new Error('socket hang up'),
            attempt: 2,
            maxAttempts: 5,
            outcome: 'retry',
          },
          {
            title: 'plain Error (network) on the last attempt',
            makeError: () => new Error('socket hang up'),
            attempt: 5,
            maxAttempts: 5,
            outcome: 'failed',
            reason: 'RetriesExhausted',
          },
        ] satisfies FailureRow[]
      ).map((r) => ({
        ...r,
        title: `${r.title} → audited '${r.outcome}'${r.reason ? `, recorded for status as ${r.reason}` : ', nothing recorded'}`,
      })),
    ),
  )('%s', async (_title, { makeError, attempt, maxAttempts, outcome, reason }) => {
    const h = harness();
    h.cluster.addNamespace(nsView(NS)).addCr(crView('a')).addServiceAccount(saView(NS, 'default'));
    const thrown = makeError();
    h.cluster.failOn('createSecret', thrown);
    const audit = new FakeAudit();
    const observed: string[] = [];

    const error = await runJob(runDeps(h, audit, observed), payloadOf(nsKey, 'modified'), {
      attempt,
      maxAttempts,
      jobId: 'j1',
    }).catch((x: unknown) => x);

    expect(error).toBe(thrown);
    expect(audit.entries).toEqual([
      {
        time: '2025-01-02T03:04:05.678Z',
        cluster: CLUSTER_ID,
        kind: 'namespace',
        key: `namespace ${NS} @${CLUSTER_ID}`,
        namespace: NS,
        cr: undefined,
        trigger: 'modified',
        actions: [],
        outcome,
        error: thrown.message,
        durationMs: 0,
        attempt,
        jobId: 'j1',
      },
    ]);
    expect(observed).toEqual([`namespace ${outcome}`]);
    const failures = await h.failures.list(CLUSTER_ID, 'a');
    expect(failures).toEqual(
      reason ? [{ namespace: NS, reason, message: thrown.message, since: '2025-01-02T03:04:05Z' }] : [],
    );
    expect(h.queue.keys()).toEqual(reason ? ['imagepullsecret-status a'] : []);
  });

  it.each<[string, JobKey, { namespace?: string; cr: string[] }]>([
    ['namespace', nsKey, { namespace: NS, cr: ['a'] }],
    [
      'serviceaccount',
      { cluster: CLUSTER_ID, kind: 'serviceaccount', namespace: NS, name: 'default' },
      { namespace: NS, cr: ['a'] },
    ],
    ['imagepullsecret', { cluster: CLUSTER_ID, kind: 'imagepullsecret', name: 'a' }, { cr: ['a'] }],
    [
      'imagepullsecret-status',
      { cluster: CLUSTER_ID, kind: 'imagepullsecret-status', name: 'a' },
      { cr: ['a'] },
    ],
  ])(
    'a %s job succeeds: one audit entry with its namespace, CRs and actions',
    async (kind, key, expected) => {
      const h = harness();
      h.cluster.addNamespace(nsView(NS)).addCr(crView('a')).addServiceAccount(saView(NS, 'default'));
      const audit = new FakeAudit();
      const result = await runJob(runDeps(h, audit), payloadOf(key), { attempt: 1, maxAttempts: 5 });
      expect(audit.entries).toHaveLength(1);
      expect(audit.entries[0]).toMatchObject({
        kind,
        outcome: 'success',
        cr: expected.cr,
        attempt: 1,
        error: undefined,
      });
      expect(audit.entries[0]?.namespace).toBe(expected.namespace);
      expect(audit.entries[0]?.actions).toEqual(result.actions);
      expect(result.actions.length).toBeGreaterThan(0);
    },
  );

  it('an unknown cluster → TerminalError, audited as failed', async () => {
    const h = harness();
    const audit = new FakeAudit();
    const key: JobKey = { cluster: 'elsewhere', kind: 'namespace', name: NS };
    await expect(runJob(runDeps(h, audit), payloadOf(key), { attempt: 1, maxAttempts: 5 })).rejects.toThrow(
      new TerminalError('unknown cluster "elsewhere"'),
    );
    expect(audit.entries).toEqual([expect.objectContaining({ cluster: 'elsewhere', outcome: 'failed' })]);
  });
});

// ---- the whole loop: jobs feed jobs until the queue is empty -----------------------------------------------

async function drain(h: Harness, deps: RunJobDeps, errors: unknown[] = [], limit = 1000): Promise<number> {
  let runs = 0;
  for (let item = h.queue.take(); item; item = h.queue.take()) {
    if (++runs > limit) throw new Error('queue did not drain');
    await runJob(
      deps,
      { v: 1, key: item.key, trigger: item.trigger, at: 0 },
      { attempt: 1, maxAttempts: 3 },
    ).catch((e: unknown) => errors.push(e));
  }
  return runs;
}

describe('whole loop through runJob', () => {
  function fleet(): Harness {
    const h = harness();
    for (const ns of ['ns-1', 'ns-2', 'ns-3']) {
      h.cluster.addNamespace(nsView(ns, ns === 'ns-3' ? { annotations: { [SKIP_ANNOTATION]: 'true' } } : {}));
      h.cluster.addServiceAccount(saView(ns, 'default', ['theirs']));
    }
    h.cluster.addCr(crView('a', { finalizers: [], password: PW }));
    return h;
  }
  const ipsKey: JobKey = { cluster: CLUSTER_ID, kind: 'imagepullsecret', name: 'a' };

  it('create → Synced; idle resync → zero writes; password rotation → updated; delete → everything of ours gone', async () => {
    const h = fleet();
    const audit = new FakeAudit();
    const deps = runDeps(h, audit);

    await h.queue.enqueue([{ key: ipsKey, trigger: 'added' }]);
    await drain(h, deps);
    const cr = h.cluster.crs.get('a');
    expect(cr?.finalizers).toEqual([FINALIZER]);
    expect(cr?.status).toMatchObject({
      secretsDesired: 2,
      secretsSuccess: 2,
      conditions: [{ reason: 'Synced' }],
    });
    expect(h.cluster.events.map((e) => e.event.reason)).toEqual(['Synced']);
    expect(h.cluster.snapshot().secrets.map((s) => s.key)).toEqual([`ns-1/${A}`, `ns-2/${A}`]);
    expect(h.cluster.pullSecretsOf('ns-1', 'default')).toEqual(['theirs', A]);
    expect(h.cluster.pullSecretsOf('ns-3', 'default')).toEqual(['theirs']);

    h.cluster.resetCounts();
    await h.queue.enqueue([{ key: ipsKey, trigger: 'resync' }]);
    expect(await drain(h, deps)).toBe(1);
    expect(h.cluster.writeCalls()).toBe(0);

    h.cluster.editCr('a', (x) => {
      x.spec.docker = dockerCreds(`${PW}-2`);
      x.credential = dockerCreds(`${PW}-2`);
    });
    await h.queue.enqueue([{ key: ipsKey, trigger: 'modified' }]);
    await drain(h, deps);
    expect(h.cluster.secret('ns-2', A)?.data['.dockerconfigjson']).toBe(
      renderDockerConfigJson(dockerCreds(`${PW}-2`)),
    );
    expect(h.cluster.crs.get('a')?.status.observedGeneration).toBe(2);

    h.cluster.deleteCr('a');
    await h.queue.enqueue([{ key: ipsKey, trigger: 'deleted' }]);
    await drain(h, deps);
    expect(h.cluster.crs.has('a')).toBe(false);
    expect(h.cluster.secrets.size).toBe(0);
    expect(h.cluster.snapshot().serviceAccounts.map((s) => s.imagePullSecrets)).toEqual([
      ['theirs'],
      ['theirs'],
      ['theirs'],
    ]);
    expect(audit.entries.every((e) => e.outcome === 'success')).toBe(true);
  });

  it('upgrade: Secrets with the old CR-name annotation cost zero writes; a rotation rewrites them without it; delete removes them', async () => {
    const h = harness();
    const a = crView('a', { password: PW });
    h.cluster.addCr(a);
    for (const ns of ['ns-1', 'ns-2']) {
      h.cluster.addNamespace(nsView(ns)).addSecret(ourSecretView(a, ns, { oldShape: true }));
      h.cluster.addServiceAccount(saView(ns, 'default', [A]));
    }
    const deps = runDeps(h, new FakeAudit());
    const secretWrites = () =>
      h.cluster.callsOf('createSecret') +
      h.cluster.callsOf('replaceSecret') +
      h.cluster.callsOf('deleteSecret');

    await h.queue.enqueue([{ key: ipsKey, trigger: 'added' }]);
    await drain(h, deps);
    expect(secretWrites()).toBe(0);
    expect(h.cluster.crs.get('a')?.status).toMatchObject({ secretsDesired: 2, secretsSuccess: 2 });
    expect(h.cluster.secret('ns-1', A)?.annotations).toEqual({ [CR_NAME_ANNOTATION]: 'a' });
    h.cluster.resetCounts();
    await reconcileNamespace(h.deps, 'ns-1');
    await h.queue.enqueue([{ key: ipsKey, trigger: 'resync' }]);
    await drain(h, deps);
    expect(h.cluster.writeCalls()).toBe(0);

    h.cluster.editCr('a', (x) => {
      x.spec.docker = dockerCreds(`${PW}-2`);
      x.credential = dockerCreds(`${PW}-2`);
    });
    await h.queue.enqueue([{ key: ipsKey, trigger: 'modified' }]);
    await drain(h, deps);
    for (const ns of ['ns-1', 'ns-2']) {
      const s = h.cluster.secret(ns, A);
      expect(s?.data['.dockerconfigjson']).toBe(renderDockerConfigJson(dockerCreds(`${PW}-2`)));
      expect(s?.annotations).toEqual({});
      expect(s?.labels[CR_UID_LABEL]).toBe(a.uid);
      expect(s?.owners).toEqual([]);
    }

    h.cluster.deleteCr('a');
    await h.queue.enqueue([{ key: ipsKey, trigger: 'deleted' }]);
    await drain(h, deps);
    expect(h.cluster.secrets.size).toBe(0);
    expect(h.cluster.pullSecretsOf('ns-1', 'default')).toEqual([]);
  });

  it('the password never appears in anything recorded: audit, failures, queue, status, events, errors', async () => {
    const h = fleet();
    const audit = new FakeAudit();
    const deps = runDeps(h, audit);
    const errors: unknown[] = [];
    const docker = dockerCreds(PW);
    const configJson = renderDockerConfigJson(docker);
    const basicAuth = Buffer.from(`${docker.username}:${PW}`).toString('base64');

    await h.queue.enqueue([{ key: ipsKey, trigger: 'added' }]);
    await drain(h, deps, errors);

    // Failures whose messages carry credentials in the shapes the scrubber knows, on the final attempt.
    const final = { attempt: 3, maxAttempts: 3 };
    const failing: [Parameters<FakeCluster['failOn']>[0], Error][] = [
      ['replaceSecret', new RetryableError(`update secrets: HTTP 500: {"details":{"password":"${PW}"}}`)],
      [
        'replaceSecret',
        new TerminalError(`update secrets: HTTP 422: data[.dockerconfigjson]: ${configJson}`),
      ],
      ['replaceSecret', new Error(`request failed; Authorization: Basic ${basicAuth}`)],
    ];
    for (const [i, [method, error]] of failing.entries()) {
      h.cluster.clearFaults().failOn(method, error);
      h.cluster.editCr('a', (x) => {
        x.spec.docker = dockerCreds(`${PW}-${i}`);
        x.credential = dockerCreds(`${PW}-${i}`);
      });
      await runJob(deps, payloadOf({ cluster: CLUSTER_ID, kind: 'namespace', name: 'ns-1' }), final).catch(
        (e: unknown) => errors.push(e),
      );
    }
    await runJob(deps, { ...payloadOf(nsKey), password: PW }, final).catch((e: unknown) => errors.push(e));
    await runJob(deps, payloadOf({ ...nsKey, name: PW }), final).catch((e: unknown) => errors.push(e));
    h.cluster.clearFaults();
    await drain(h, deps, errors);

    expect(errors).toHaveLength(5);
    expect(audit.entries.filter((e) => e.outcome === 'failed')).toHaveLength(5);
    const failures = await h.failures.list(CLUSTER_ID, 'a');
    const recorded = JSON.stringify({
      audit: audit.entries,
      failures: [...h.failures.byCr.entries()].map(([k, v]) => [k, [...v.values()]]),
      failuresListed: failures,
      queue: h.queue.batches,
      statuses: h.cluster.statusWrites,
      crStatus: h.cluster.crs.get('a')?.status,
      events: h.cluster.events,
      errors: errors.map((e) => (e instanceof Error ? { name: e.name, message: e.message } : String(e))),
    });
    expect(recorded).toContain('[redacted]');
    for (const needle of [PW, configJson, basicAuth]) expect(recorded).not.toContain(needle);
  });

  // Reported: scrubMessage matches `"password":"…"` but not the escaped form `\"password\":\"…\"` that a
  // JSON document quoted inside a message (e.g. a 422 "Invalid value: \"{…}\"") takes.
  it('a password inside an escaped JSON document in an error message is scrubbed too', async () => {
    const h = harness();
    h.cluster.addNamespace(nsView(NS)).addCr(crView('a')).addServiceAccount(saView(NS, 'default'));
    h.cluster.failOn(
      'createSecret',
      new TerminalError(
        `create secrets: HTTP 422: Invalid value: "{\\"auths\\":{\\"r\\":{\\"password\\":\\"${PW}\\"}}}"`,
      ),
    );
    const audit = new FakeAudit();
    await runJob(runDeps(h, audit), payloadOf(nsKey), { attempt: 1, maxAttempts: 3 }).catch(() => undefined);
    expect(JSON.stringify(audit.entries)).not.toContain(PW);
  });
});

// ---- deadlines: a job out of time starts no further write ------------------------------------------------

describe('the job deadline (AbortSignal) in the core', () => {
  it.each([0, 1, 2, 4, 5])(
    'aborted after write %i: no later write starts, the error is retryable',
    async (n) => {
      const reference = harness(seedScenario(new FakeCluster()));
      await reconcileNamespace(reference.deps, NS);
      const h = harness(seedScenario(new FakeCluster()));
      const controller = new AbortController();
      // The deadline passes while write n + 1 is on its way (the fake does not cancel it).
      h.cluster.beforeWrite((_method, index) => {
        if (index === n + 1)
          controller.abort(new DeadlineExceededError('job namespace team-a: deadline exceeded'));
      });
      const deps = { ...h.deps, signal: controller.signal };
      const error = await reconcileNamespace(deps, NS).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error).toBeInstanceOf(RetryableError);
      // The write in flight when the deadline hit may finish; nothing after it starts.
      expect(h.cluster.writeCalls()).toBeLessThanOrEqual(n + 1);
      expect(danglingEntries(h.cluster)).toEqual([]);
      // The retry (a fresh job, a fresh deadline) converges from where it stopped.
      h.cluster.clearFaults();
      await reconcileNamespace(h.deps, NS);
      expect(danglingEntries(h.cluster)).toEqual([]);
      expect(h.cluster.snapshot()).toEqual(reference.cluster.snapshot());
    },
  );
});
