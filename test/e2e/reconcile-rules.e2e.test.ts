import { CoreV1Api as Core, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../functions/adapters/audit-reader.js';
import { QUEUE_NAME } from '../../shared/contracts/jobs.js';
import { CR_NAME_ANNOTATION, CR_UID_LABEL } from '../../shared/contracts/labels.js';
import { API_VERSION, KIND, secretNameFor } from '../../shared/contracts/names.js';
import { createCr, deleteCr, docker, patchCrSpec, readCr } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import {
  adminKubeConfig,
  createNamespace,
  createServiceAccount,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { dockerConfigOf, pullSecretsOf, readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
let fx: FunctionsHarness;
const crs: string[] = [];

beforeAll(async () => {
  fx = await startFunctions();
});
afterAll(async () => {
  for (const cr of crs) {
    await deleteCr(kc, cr).catch(() => {});
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'deleted');
  }
  await fx.drain().catch(() => {});
  await fx?.close();
});

async function namespaceWithSa(
  prefix: string,
  sas: string[] = [],
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
) {
  const ns = uniqueName(prefix);
  await createNamespace(kc, ns, labels, annotations);
  for (const sa of sas) await createServiceAccount(kc, ns, sa);
  await waitFor(`default SA in ${ns}`, () =>
    core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }),
  );
  return ns;
}

async function newCr(spec: Record<string, unknown>) {
  const name = uniqueName('cr');
  crs.push(name);
  await createCr(kc, name, { docker: docker(), ...spec });
  return name;
}

const reconcileCr = async (name: string) => {
  await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name });
  await fx.drain();
};
const reconcileNs = async (name: string) => {
  await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name });
  await fx.drain();
};

describe('ServiceAccount writes race another writer', () => {
  it('never drops an entry a concurrent writer added (resourceVersion-guarded, re-read on 409)', async () => {
    const ns = await namespaceWithSa('race', ['busy']);
    const names = [
      await newCr({ namespaces: ns }),
      await newCr({ namespaces: ns }),
      await newCr({ namespaces: ns }),
    ];
    const other = kc.makeApiClient(Core);
    // Another controller appends 15 entries with read-modify-write updates, retrying its own 409s.
    const otherWriter = (async () => {
      for (let i = 0; i < 15; i++) {
        for (;;) {
          const sa = await other.readNamespacedServiceAccount({ namespace: ns, name: 'busy' });
          sa.imagePullSecrets = [...(sa.imagePullSecrets ?? []), { name: `other-${i}` }];
          try {
            await other.replaceNamespacedServiceAccount({ namespace: ns, name: 'busy', body: sa });
            break;
          } catch (error) {
            if (statusOf(error) !== 409) throw error;
          }
        }
      }
    })();
    // Meanwhile our jobs add their three entries, as separate jobs to maximize interleaving.
    const ours = (async () => {
      for (const cr of names) {
        await fx.enqueue({ cluster: CLUSTER, kind: 'serviceaccount', namespace: ns, name: 'busy' });
        await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr });
      }
      await fx.drain();
    })();
    await Promise.all([otherWriter, ours]);
    await reconcileNs(ns);
    const entries = await pullSecretsOf(kc, ns, 'busy');
    for (let i = 0; i < 15; i++) expect(entries).toContain(`other-${i}`);
    for (const cr of names) expect(entries).toContain(secretNameFor(cr));
    expect(new Set(entries).size).toBe(entries.length);
  });
});

describe('a Secret of the same name that is not ours', () => {
  it('is never overwritten or deleted, and the CR status reports the conflict', async () => {
    const ns = await namespaceWithSa('conflict');
    const cr = uniqueName('cr');
    crs.push(cr);
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: secretNameFor(cr) }, type: 'Opaque', stringData: { mine: 'keep-me' } },
    });
    await createCr(kc, cr, { namespaces: ns, docker: docker() });
    await reconcileCr(cr);
    const status = await waitFor('conflict in status', async () => {
      const s = (await readCr(kc, cr)).status;
      return s?.failedNamespaces?.some((f) => f.namespace === ns) ? s : undefined;
    });
    expect(status.failedNamespaces?.find((f) => f.namespace === ns)?.reason).toBe('Conflict');
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Conflict',
    });
    const events = await core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.name=${cr}`,
    });
    expect(events.items.map((e) => e.reason)).toContain('Conflict');
    expect(await pullSecretsOf(kc, ns, 'default')).not.toContain(secretNameFor(cr));

    // The namespace job itself meets the foreign Secret (409 on create): one attempt, reported, no retries.
    await reconcileNs(ns);
    const audit = await listAudit(fx.rt.redis, `${fx.prefix}:audit`, { namespace: ns });
    const nsJobs = audit.filter((e) => e.kind === 'namespace');
    expect(nsJobs.map((e) => [e.outcome, e.attempt])).toEqual([['success', 1]]);
    expect(nsJobs[0]?.actions).toContainEqual(
      expect.objectContaining({ verb: 'conflict', object: `Secret ${ns}/${secretNameFor(cr)}` }),
    );

    await deleteCr(kc, cr);
    await reconcileCr(cr);
    const kept = await readSecret(kc, ns, secretNameFor(cr));
    expect(kept?.type).toBe('Opaque');
    expect(Buffer.from(kept?.data?.mine ?? '', 'base64').toString()).toBe('keep-me');
    expect(kept?.metadata?.labels ?? {}).toEqual({});
  });
});

describe('narrowing the rules', () => {
  it('removes the Secret from namespaces that no longer match, and entries from ServiceAccounts that no longer match', async () => {
    const a = await namespaceWithSa('narrow-a', ['builder']);
    const b = await namespaceWithSa('narrow-b');
    const cr = await newCr({ namespaces: `${a},${b}`, serviceAccounts: '*' });
    const secret = secretNameFor(cr);
    await reconcileCr(cr);
    expect(await readSecret(kc, b, secret)).toBeDefined();
    expect(await pullSecretsOf(kc, a, 'builder')).toContain(secret);

    await patchCrSpec(kc, cr, { namespaces: a, serviceAccounts: 'default' });
    await reconcileCr(cr);
    await reconcileNs(a);
    expect(await readSecret(kc, b, secret)).toBeUndefined();
    expect(await pullSecretsOf(kc, b, 'default')).not.toContain(secret);
    expect(await readSecret(kc, a, secret)).toBeDefined();
    expect(await pullSecretsOf(kc, a, 'default')).toContain(secret);
    expect(await pullSecretsOf(kc, a, 'builder')).not.toContain(secret);
  });
});

describe('the skip annotation', () => {
  it('leaves a skipped namespace or ServiceAccount alone, and cleans up once it is added', async () => {
    const skippedNs = await namespaceWithSa('skip-ns', [], {}, { 'tcr.tencentcloudcr.com/skip': 'true' });
    const ns = await namespaceWithSa('skip-sa', ['robot']);
    const cr = await newCr({ namespaces: `${skippedNs},${ns}` });
    const secret = secretNameFor(cr);
    await reconcileCr(cr);
    expect(await readSecret(kc, skippedNs, secret)).toBeUndefined();
    expect(await pullSecretsOf(kc, ns, 'robot')).toContain(secret);

    await core.patchNamespacedServiceAccount(
      {
        namespace: ns,
        name: 'robot',
        body: { metadata: { annotations: { 'tcr.tencentcloudcr.com/skip': 'true' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await fx.enqueue({ cluster: CLUSTER, kind: 'serviceaccount', namespace: ns, name: 'robot' });
    await fx.drain();
    expect(await pullSecretsOf(kc, ns, 'robot')).not.toContain(secret);
    expect(await pullSecretsOf(kc, ns, 'default')).toContain(secret);

    await core.patchNamespace(
      { name: ns, body: { metadata: { annotations: { 'tcr.tencentcloudcr.com/skip': 'true' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await reconcileNs(ns);
    expect(await readSecret(kc, ns, secret)).toBeUndefined();
    expect(await pullSecretsOf(kc, ns, 'default')).not.toContain(secret);
  });
});

describe('upgrade from a version that wrote the CR-name annotation and an owner reference (issue #15)', () => {
  it('a converged Secret carrying them costs no write; a password change rewrites it without them', async () => {
    const ns = await namespaceWithSa('upgrade');
    const cr = await newCr({ namespaces: ns });
    const secret = secretNameFor(cr);
    await reconcileCr(cr);
    const fresh = await waitFor(`our Secret in ${ns}`, () => readSecret(kc, ns, secret));
    expect(fresh.metadata?.annotations?.[CR_NAME_ANNOTATION]).toBeUndefined();

    expect(fresh.metadata?.ownerReferences).toBeUndefined();
    const crUid = (await readCr(kc, cr)).metadata.uid;

    // As an earlier version left it (the same Secret, plus its annotation, and an owner reference to the CR
    // spelling out `controller: false` and `blockOwnerDeletion: false`).
    await core.patchNamespacedSecret(
      {
        namespace: ns,
        name: secret,
        body: {
          metadata: {
            annotations: { [CR_NAME_ANNOTATION]: cr },
            ownerReferences: [
              {
                apiVersion: API_VERSION,
                kind: KIND,
                name: cr,
                uid: crUid,
                controller: false,
                blockOwnerDeletion: false,
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const old = await readSecret(kc, ns, secret);
    expect(old?.metadata?.annotations?.[CR_NAME_ANNOTATION]).toBe(cr);
    expect(old?.metadata?.ownerReferences?.[0]).toMatchObject({
      controller: false,
      blockOwnerDeletion: false,
    });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'resync');
    await fx.enqueue({ cluster: CLUSTER, kind: 'namespace', name: ns }, 'resync');
    await fx.drain();
    await reconcileNs(ns);
    expect((await readSecret(kc, ns, secret))?.metadata?.resourceVersion).toBe(
      old?.metadata?.resourceVersion,
    );

    await patchCrSpec(kc, cr, { docker: docker('rotated.jwt.token') });
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'modified');
    await fx.drain();
    const rotated = await readSecret(kc, ns, secret);
    expect(dockerConfigOf(rotated!).auths['fanjiankong-bj.tencentcloudcr.com']?.password).toBe(
      'rotated.jwt.token',
    );
    expect(rotated?.metadata?.uid).toBe(old?.metadata?.uid);
    expect(rotated?.metadata?.annotations?.[CR_NAME_ANNOTATION]).toBeUndefined();
    expect(rotated?.metadata?.labels?.[CR_UID_LABEL]).toBe(crUid);
    expect(rotated?.metadata?.ownerReferences).toBeUndefined();
  });
});

describe('namespaceSelector', () => {
  it('is ANDed with the names rule, and relabelling a namespace cleans up', async () => {
    const team = uniqueName('team');
    const inTeam = await namespaceWithSa('sel-in', [], { team });
    const otherTeam = await namespaceWithSa('sel-out', [], { team: 'other' });
    const cr = await newCr({ namespaces: '*', namespaceSelector: { matchLabels: { team } } });
    const secret = secretNameFor(cr);
    await reconcileCr(cr);
    expect(await readSecret(kc, inTeam, secret)).toBeDefined();
    expect(await readSecret(kc, otherTeam, secret)).toBeUndefined();
    const status = await waitFor(
      'status',
      async () => (await readCr(kc, cr)).status?.secretsDesired === 1 || undefined,
    );
    expect(status).toBe(true);

    await core.patchNamespace(
      { name: inTeam, body: { metadata: { labels: { team: 'moved' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await reconcileNs(inTeam);
    expect(await readSecret(kc, inTeam, secret)).toBeUndefined();
  });
});

describe('two CRs in one namespace', () => {
  it('keeps both Secrets and both entries, and deleting one leaves the other', async () => {
    const ns = await namespaceWithSa('two');
    const first = await newCr({ namespaces: ns });
    const second = await newCr({ namespaces: ns });
    await reconcileCr(first);
    await reconcileCr(second);
    expect(await pullSecretsOf(kc, ns, 'default')).toEqual([secretNameFor(first), secretNameFor(second)]);

    await deleteCr(kc, first);
    await reconcileCr(first);
    expect(await readSecret(kc, ns, secretNameFor(first))).toBeUndefined();
    expect(await readSecret(kc, ns, secretNameFor(second))).toBeDefined();
    expect(await pullSecretsOf(kc, ns, 'default')).toEqual([secretNameFor(second)]);
  });
});

describe('bad input', () => {
  it('fails a malformed job payload once, terminally, with a message naming the problem', async () => {
    const job = await fx.rt.queue.add('namespace', {
      v: 1,
      key: { cluster: CLUSTER, kind: 'namespace', name: 'Not A Name' },
      trigger: 'cli',
      at: 1,
    });
    await waitFor('the job to fail', async () => (await job.getState()) === 'failed');
    const failed = await fx.rt.queue.getJob(job.id ?? '');
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toMatch(/invalid job payload: key\.name: must be a Kubernetes object name/);
    const audit = await fx.rt.redis.xrevrange(`${fx.prefix}:audit`, '+', '-', 'COUNT', '50');
    const entries = audit.map(([, fields]) => JSON.parse(fields[1] ?? '{}'));
    expect(entries.find((e) => e.jobId === job.id)).toMatchObject({
      outcome: 'failed',
      kind: 'invalid',
      attempt: 1,
    });
  });
});

describe('credentials', () => {
  it('never reach Redis (every key, every stream entry) nor the logs', async () => {
    const password = `pw-${uniqueName('needle')}`;
    const ns = await namespaceWithSa('creds');
    const cr = await newCr({ namespaces: ns, docker: { ...docker(), password } });
    await reconcileCr(cr);
    expect(await readSecret(kc, ns, secretNameFor(cr))).toBeDefined();
    await patchCrSpec(kc, cr, { docker: { ...docker(), password: `${password}-2` } });
    await reconcileCr(cr);

    const needles = [
      password,
      Buffer.from(password).toString('base64').slice(0, 12),
      Buffer.from(`100012345678:${password}`).toString('base64').slice(0, 16),
    ];
    const redis = fx.rt.redis;
    const keys = await redis.keys('*');
    expect(keys.some((k) => k.includes(QUEUE_NAME))).toBe(true);
    let dump = '';
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'string') dump += await redis.get(key);
      else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
      else if (type === 'list') dump += JSON.stringify(await redis.lrange(key, 0, -1));
      else if (type === 'set') dump += JSON.stringify(await redis.smembers(key));
      else if (type === 'zset') dump += JSON.stringify(await redis.zrange(key, '0', '-1'));
      else if (type === 'stream') dump += JSON.stringify(await redis.xrange(key, '-', '+'));
    }
    expect(dump.length).toBeGreaterThan(1000);
    for (const needle of needles) {
      expect(dump).not.toContain(needle);
      expect(fx.logs.text).not.toContain(needle);
    }
    expect(fx.logs.lines.length).toBeGreaterThan(0);
  });
});
