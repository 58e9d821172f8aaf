// Our Secret writes go to the API server as protobuf (shared/kube/protobuf.ts). The real kube-apiserver is the
// judge of the encoding: what it stores must be exactly what the JSON body meant, a converged Secret must stay
// converged when read back as JSON, and its error answers (protobuf Status) must keep the reason and message
// the adapter branches on.

import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, messageOf } from '../../functions/adapters/kube/api-call.js';
import { KubeCluster } from '../../functions/adapters/kube/kube-cluster.js';
import { toCrView } from '../../functions/adapters/kube/views.js';
import type { CrView } from '../../functions/core/model.js';
import { desiredSecretFor, isSecretConverged } from '../../functions/core/pull-secret/desired-secret.js';
import { FUNCTIONS_SERVICE_ACCOUNT, SYSTEM_NAMESPACE } from '../../infra/local/paths.js';
import { FIELD_MANAGER } from '../../shared/contracts/labels.js';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';
import { createCr, deleteCr, docker } from '../support/crs.js';
import {
  adminKubeConfig,
  createNamespace,
  impersonatingKubeConfig,
  rejectionOf,
  serviceAccountUser,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { waitFor } from '../support/wait.js';

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const functionsKc = impersonatingKubeConfig(serviceAccountUser(SYSTEM_NAMESPACE, FUNCTIONS_SERVICE_ACCOUNT));
const cluster = new KubeCluster('e2e', functionsKc);

const crName = uniqueName('pb');
let cr: CrView;
const ns = uniqueName('pb-writes');

beforeAll(async () => {
  // Nothing matches it: no worker runs in this file, and none of another file may touch this namespace.
  await createCr(kc, crName, { namespaces: 'no-such-namespace-pb', docker: docker('v1') });
  cr = toCrView(
    await kc
      .makeApiClient(CustomObjectsApi)
      .getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: crName }),
  );
  await createNamespace(kc, ns);
});

afterAll(async () => {
  await deleteCr(kc, crName).catch(() => undefined);
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

const withPassword = (password: string): CrView => ({
  ...cr,
  credential: { ...docker(password) },
});

describe('Secret writes in protobuf', () => {
  it('store exactly the Secret the JSON body meant, converged when read back as JSON', async () => {
    const desired = desiredSecretFor(withPassword('p1'), ns);
    expect(await cluster.createSecret(desired)).toBe('created');

    const stored = await core.readNamespacedSecret({ namespace: ns, name: desired.name });
    expect(stored.type).toBe(desired.type);
    expect(stored.data).toEqual(desired.data);
    expect(stored.metadata?.labels).toEqual(desired.labels);
    expect(stored.metadata?.annotations).toBeUndefined();
    // No owner reference (ADR-003 Ownership): the labels are all the metadata we send.
    expect(stored.metadata?.ownerReferences).toBeUndefined();
    expect(stored.metadata?.managedFields?.map((m) => [m.manager, m.operation])).toEqual([
      [FIELD_MANAGER, 'Update'],
    ]);
    const [view] = await cluster.listOurSecrets(ns);
    expect(view && isSecretConverged(view, desired)).toBe(true);
  });

  it('rewrite in place under the resourceVersion read; a stale one is a 409 Conflict with its message', async () => {
    const [before] = await cluster.listOurSecrets(ns);
    const next = desiredSecretFor(withPassword('p2'), ns);
    await cluster.replaceSecret(next, before!.resourceVersion);
    const [after] = await cluster.listOurSecrets(ns);
    expect(after && isSecretConverged(after, next)).toBe(true);
    expect(after!.resourceVersion).not.toBe(before!.resourceVersion);

    const stale = await rejectionOf(
      cluster.replaceSecret(desiredSecretFor(withPassword('p3'), ns), before!.resourceVersion),
    );
    expect(codeOf(stale)).toBe(409);
    expect(messageOf(stale)).toMatch(/Conflict.*the object has been modified/);
    // Nothing of the refused write's content in the error.
    expect(messageOf(stale)).not.toContain(
      desiredSecretFor(withPassword('p3'), ns).data['.dockerconfigjson'],
    );
    const [unchanged] = await cluster.listOurSecrets(ns);
    expect(unchanged!.resourceVersion).toBe(after!.resourceVersion);
  });

  it('a create over an existing Secret of ours is `exists`; into a missing namespace `namespace-gone`', async () => {
    expect(await cluster.createSecret(desiredSecretFor(withPassword('p2'), ns))).toBe('exists');
    expect(await cluster.createSecret(desiredSecretFor(withPassword('p2'), uniqueName('never-made')))).toBe(
      'namespace-gone',
    );
  });

  it('a create into a terminating namespace reads the protobuf 403 message and is `namespace-gone`', async () => {
    const doomed = uniqueName('pb-doomed');
    await createNamespace(kc, doomed);
    // A ConfigMap with a finalizer holds the namespace in Terminating while the create is tried.
    await core.createNamespacedConfigMap({
      namespace: doomed,
      body: { metadata: { name: 'hold', finalizers: ['e2e.tcr-assistant/hold'] } },
    });
    await core.deleteNamespace({ name: doomed });
    await waitFor(`namespace ${doomed} terminating`, async () => {
      const n = await core.readNamespace({ name: doomed });
      return n.status?.phase === 'Terminating';
    });
    expect(await cluster.createSecret(desiredSecretFor(withPassword('p1'), doomed))).toBe('namespace-gone');
    await core.patchNamespacedConfigMap(
      { namespace: doomed, name: 'hold', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await waitFor(
      `namespace ${doomed} gone`,
      async () => statusOf(await rejectionOf(core.readNamespace({ name: doomed }))) === 404,
    );
  });
});
