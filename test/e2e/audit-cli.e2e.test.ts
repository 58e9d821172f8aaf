import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listAudit, parseSince } from '../../functions/adapters/audit-reader.js';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { GROUP, PLURAL, secretNameFor, VERSION } from '../../shared/contracts/names.js';
import { createCr, deleteCr, docker } from '../support/crs.js';
import { CLUSTER, type FunctionsHarness, startFunctions } from '../support/functions.js';
import { adminKubeConfig, createNamespace, uniqueName } from '../support/kube.js';
import { readSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
let fx: FunctionsHarness;
const cr = uniqueName('audit');
const ns = uniqueName('audited');

beforeAll(async () => {
  fx = await startFunctions();
  await createNamespace(kc, ns);
  await waitFor('default SA', () => core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }));
  await createCr(kc, cr, { namespaces: ns, docker: docker('audit-password-xyz') });
});
afterAll(async () => {
  await deleteCr(kc, cr).catch(() => {});
  await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr });
  await fx.drain().catch(() => {});
  await fx.close();
});

describe('the audit stream', () => {
  it('has one entry per processed job, filterable by namespace, CR and outcome, without credentials', async () => {
    const since = Date.now();
    await fx.enqueue({ cluster: CLUSTER, kind: 'imagepullsecret', name: cr }, 'added');
    await fx.drain();
    const key = `${fx.prefix}:audit`;
    const forNs = await listAudit(fx.rt.redis, key, { namespace: ns, since });
    expect(forNs).toHaveLength(1);
    expect(forNs[0]).toMatchObject({
      cluster: CLUSTER,
      kind: 'namespace',
      trigger: 'fanout',
      outcome: 'success',
      attempt: 1,
    });
    expect(forNs[0]?.actions.map((a) => `${a.verb} ${a.object}`)).toEqual(
      expect.arrayContaining([
        `created Secret ${ns}/${secretNameFor(cr)}`,
        `patched ServiceAccount ${ns}/default`,
      ]),
    );
    const forCr = await listAudit(fx.rt.redis, key, { cr, since });
    expect(forCr.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['imagepullsecret', 'namespace', 'imagepullsecret-status']),
    );
    expect(await listAudit(fx.rt.redis, key, { outcome: 'failed', since })).toEqual([]);
    expect(JSON.stringify(forCr)).not.toContain('audit-password-xyz');
  });

  it('parses --since as a duration or an ISO time, and says what is wrong otherwise', () => {
    expect(parseSince('10m', 1_000_000)).toBe(400_000);
    expect(parseSince('2026-11-25T00:00:00Z')).toBe(Date.parse('2026-11-25T00:00:00Z'));
    expect(() => parseSince('yesterday')).toThrow(/--since: "yesterday"/);
  });
});

describe('the CLI one-shot', () => {
  it('reconciles one namespace in-process and prints the actions; audit prints JSON lines', async () => {
    const other = uniqueName('cli');
    await createNamespace(kc, other);
    const name = uniqueName('cli-cr');
    await createCr(kc, name, { namespaces: other, serviceAccounts: 'none-yet', docker: docker() });
    const env = {
      ...process.env,
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: `{cli${randomBytes(3).toString('hex')}}`,
      CLUSTER_ID: CLUSTER,
      KUBECONFIG: inject('functionsKubeconfigPath'),
      LOG_LEVEL: 'silent',
    };
    const cli = path.join(REPO_ROOT, 'functions', 'cli.ts');
    const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    try {
      const out = await run(tsx, [cli, 'reconcile', 'namespace', other], { env });
      expect(out.stdout).toContain(`created  Secret ${other}/${secretNameFor(name)}`);
      expect(await readSecret(kc, other, secretNameFor(name))).toBeDefined();
      const audit = await run(tsx, [cli, 'audit', '--namespace', other], { env });
      const lines = audit.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ trigger: 'cli', outcome: 'success', kind: 'namespace' });
      const bad = (await run(tsx, [cli, 'reconcile', 'namespace', 'Bad_Name'], { env }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { stderr: string; code: number }) => e,
      )) as { code: number; stderr: string };
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/bad key: name: must be a Kubernetes object name/);
    } finally {
      await deleteCr(kc, name);
      await run(tsx, [cli, 'reconcile', 'imagepullsecret', name], { env });
      await run(tsx, [cli, 'reconcile', 'namespace', other], { env });
      // The Secret is gone: this run removes the finalizer.
      await run(tsx, [cli, 'reconcile', 'imagepullsecret', name], { env });
      await waitFor('the CLI-made CR to be gone', async () => {
        const list = await kc
          .makeApiClient(CustomObjectsApi)
          .listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL });
        return !(list as { items: { metadata: { name: string } }[] }).items.some(
          (i) => i.metadata.name === name,
        );
      });
    }
  });
});
