import { ApiException, ApiextensionsV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';

/**
 * Waits until a CRD reports Established=True (its API is served) and its objects' storage answers a full LIST;
 * fails naming the CRD and what was last seen.
 *
 * Established is not enough on an API server that has just started: the custom resources' watch cache is
 * built after that, and until it is, a LIST without a limit (what an informer or our functions send) and a
 * WATCH are refused with 429 "storage is (re)initializing" (KEP-4568, Kubernetes ≥ 1.31). The first job of a
 * fresh cluster hit exactly that once (scf-handler e2e's token timer run alone).
 */
export async function waitForCrdEstablished(kc: KubeConfig, name: string, timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  let last = 'not read yet';
  for (;;) {
    const crd = await api.readCustomResourceDefinition({ name });
    const conditions = crd.status?.conditions ?? [];
    if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) {
      const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name ?? '';
      await waitForStorage(kc, crd.spec.group, version, crd.spec.names.plural, deadline, timeoutMs);
      return;
    }
    last = JSON.stringify(conditions);
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${name} not Established after ${timeoutMs} ms; conditions: ${last}`);
}

/** Polls a full LIST (no limit: the request a cache that is not ready refuses) until it is answered. */
async function waitForStorage(
  kc: KubeConfig,
  group: string,
  version: string,
  plural: string,
  deadline: number,
  timeoutMs: number,
): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  let last = 'not listed yet';
  for (;;) {
    try {
      await custom.listClusterCustomObject({ group, version, plural });
      return;
    } catch (error) {
      // 429 (cache initializing) and 503 are the API server's "not yet"; anything else is a real problem.
      if (!(error instanceof ApiException) || (error.code !== 429 && error.code !== 503)) throw error;
      last = `HTTP ${error.code}: ${String(error.body).slice(0, 200)}`;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${plural}.${group}/${version}: Established, but a LIST was still refused after ${timeoutMs} ms; last: ${last}`,
  );
}
