import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { CRD_NAME, SAMPLE_CR_FILE } from '../../infra/local/paths.js';
import { findSpecProblems } from '../../shared/contracts/image-pull-secret.js';
import { GROUP, PLURAL, VERSION } from '../../shared/contracts/names.js';
import { readManifests } from '../../shared/kube/manifests.js';
import { getClusterCustomObjectTable } from '../../shared/kube/table.js';
import { crCases } from '../fixtures/cr-cases.js';
import {
  adminKubeConfig,
  createNamespace,
  createServiceAccount,
  impersonatingKubeConfig,
  messageOf,
  rejectionOf,
  serviceAccountUser,
  statusOf,
  uniqueName,
} from '../support/kube.js';
import { waitFor } from '../support/wait.js';

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);

describe('the local control plane', () => {
  it('gives a new namespace its default ServiceAccount (kube-controller-manager runs)', async () => {
    const ns = uniqueName('fresh');
    await createNamespace(kc, ns);
    const sa = await waitFor(`ServiceAccount default in ${ns}`, () =>
      core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }),
    );
    expect(sa.metadata?.name).toBe('default');
  });

  it('really removes a deleted namespace (namespace controller finalizes it)', async () => {
    const ns = uniqueName('doomed');
    await createNamespace(kc, ns);
    await createServiceAccount(kc, ns, 'builder');
    await core.deleteNamespace({ name: ns });
    await waitFor(`namespace ${ns} to be gone`, async () => {
      const error = await rejectionOf(core.readNamespace({ name: ns }));
      return statusOf(error) === 404;
    });
  });

  it('refuses an impersonated ServiceAccount without a permission (403) and allows it once granted', async () => {
    const ns = uniqueName('rbac');
    await createNamespace(kc, ns);
    await createServiceAccount(kc, ns, 'probe');
    const asProbe = impersonatingKubeConfig(serviceAccountUser(ns, 'probe')).makeApiClient(CoreV1Api);

    const refused = await rejectionOf(asProbe.listNamespacedConfigMap({ namespace: ns }));
    expect(statusOf(refused)).toBe(403);
    expect(messageOf(refused)).toContain(`system:serviceaccount:${ns}:probe`);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'read-configmaps' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'probe-reads-configmaps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
        subjects: [{ kind: 'ServiceAccount', name: 'probe', namespace: ns }],
      },
    });
    const list = await waitFor('the RoleBinding to take effect', () =>
      asProbe.listNamespacedConfigMap({ namespace: ns }),
    );
    expect(Array.isArray(list.items)).toBe(true);
    // Still nothing beyond what was granted.
    expect(statusOf(await rejectionOf(asProbe.listNamespacedSecret({ namespace: ns })))).toBe(403);
  });
});

describe('the ImagePullSecret CRD', () => {
  it('is Established with the add-on names, scope and printer columns', async () => {
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names.shortNames).toEqual(['ips', 'ipss']);
    expect(crd.spec.versions.map((v) => v.name)).toEqual(['v1']);
    expect(crd.spec.versions[0]?.subresources?.status).toBeDefined();
  });

  it('accepts the seed sample, which reads back with its printer columns', async () => {
    const [sample] = await readManifests(SAMPLE_CR_FILE);
    const name = uniqueName('sample');
    await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: { ...sample, metadata: { name } },
    });
    try {
      const table = await getClusterCustomObjectTable(kc, GROUP, VERSION, PLURAL);
      const names = table.columnDefinitions.map((c) => c.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'Name',
          'NAMESPACES',
          'SERVICE-ACCOUNTS',
          'SECRETS-DESIRED',
          'SECRETS-SUCCESS',
        ]),
      );
      const row = table.rows.find((r) => r.cells[0] === name);
      expect(row, `row for ${name} in ${JSON.stringify(table.rows)}`).toBeDefined();
      expect(row?.cells[names.indexOf('NAMESPACES')]).toBe('*');
      expect(row?.cells[names.indexOf('SERVICE-ACCOUNTS')]).toBe('*');
    } finally {
      await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name });
    }
  });

  describe('validation: the API server and zod give the same verdict', () => {
    it.each(crCases)('$title', async ({ name, spec, invalid }) => {
      const crName = name ?? uniqueName('case');
      const body = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ImagePullSecret',
        metadata: { name: crName },
        spec,
      };
      const zodProblems = findSpecProblems(body);
      // Server-side dry run: full validation (schema + CEL), nothing stored.
      const create = custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body,
        dryRun: 'All',
      });
      if (!invalid) {
        await create;
        expect(zodProblems).toEqual([]);
        return;
      }
      const error = await rejectionOf(create);
      expect(statusOf(error)).toBe(422);
      const apiMessage = messageOf(error);
      expect(apiMessage).toContain(invalid.field);
      expect(apiMessage).toMatch(invalid.reason);
      const zodForField = zodProblems.filter((p) => p.field === invalid.field).map((p) => p.message);
      expect(zodForField.join('; '), `zod problems: ${JSON.stringify(zodProblems)}`).toMatch(invalid.reason);
    });
  });
});
