import { afterEach, describe, expect, it } from 'vitest';
import { ClusterView, stripCr, stripNamespace } from '../../../../functions/adapters/kube/cluster-view.js';
import type { LiveCluster, ViewKind } from '../../../../functions/adapters/kube/viewed-cluster.js';
import { toSecretBody } from '../../../../functions/adapters/kube/views.js';
import { reconcileImagePullSecret } from '../../../../functions/core/image-pull-secret/reconcile-image-pull-secret.js';
import type {
  CrView,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../../../../functions/core/model.js';
import { reconcileNamespace } from '../../../../functions/core/namespace/reconcile-namespace.js';
import { reconcileServiceAccount } from '../../../../functions/core/namespace/reconcile-service-account.js';
import type { CreateResult, ReconcileDeps } from '../../../../functions/core/ports.js';
import {
  type DesiredSecret,
  desiredSecretFor,
  secretDataDigest,
} from '../../../../functions/core/pull-secret/desired-secret.js';
import { crJobReadsView, readsFromView } from '../../../../functions/runtime/build-runtime.js';
import type { Enqueue, JobKey } from '../../../../shared/contracts/jobs.js';
import { FIELD_MANAGER, FINALIZER } from '../../../../shared/contracts/labels.js';
import { RetryableError } from '../../../../shared/errors.js';
import type {
  Collection,
  ListPage,
  WatchEventType,
  WatchedObject,
  WatchMetrics,
} from '../../../../shared/kube/resource-watcher.js';
import { createLogger } from '../../../../shared/logging.js';
import { waitFor } from '../../../support/wait.js';

// The worker view and its decorator, with in-memory collections (the real ResourceWatcher runs on them) and
// a fake live port that counts what reaches the API server.

const noMetrics: WatchMetrics = {
  events: { inc: () => {} },
  dropped: { inc: () => {} },
  watchRestarts: { inc: () => {} },
  relists: { inc: () => {} },
  sawEvent: () => {},
};

let rv = 100;
const nextRv = () => String(++rv);

/** A collection the test fills and changes; `listed` gates the first list (a view that has not synced). */
class FakeCollection implements Collection {
  objects = new Map<string, WatchedObject>();
  private feed: ((type: WatchEventType, o: WatchedObject) => void) | undefined;
  private release: (() => void) | undefined;
  readonly gate: Promise<void>;
  constructor(open = true) {
    this.gate = open ? Promise.resolve() : new Promise((resolve) => (this.release = resolve));
  }
  open(): void {
    this.release?.();
  }
  private keyOf(o: WatchedObject): string {
    return `${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
  }
  listPage = async (): Promise<ListPage> => {
    await this.gate;
    return { items: [...this.objects.values()], resourceVersion: String(rv) };
  };
  watch = (_rv: string, onEvent: (type: WatchEventType, o: WatchedObject) => void, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      this.feed = onEvent;
      signal.addEventListener(
        'abort',
        () => {
          this.feed = undefined;
          resolve();
        },
        { once: true },
      );
    });
  get watching(): boolean {
    return this.feed !== undefined;
  }
  put(o: WatchedObject, event = true): void {
    const type = this.objects.has(this.keyOf(o)) ? 'MODIFIED' : 'ADDED';
    this.objects.set(this.keyOf(o), o);
    if (event) this.feed?.(type, o);
  }
  remove(o: WatchedObject): void {
    this.objects.delete(this.keyOf(o));
    this.feed?.('DELETED', o);
  }
}

const nsObj = (name: string, labels: Record<string, string> = {}): WatchedObject =>
  ({
    metadata: {
      name,
      labels,
      resourceVersion: nextRv(),
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(500) },
    },
  }) as WatchedObject;
const saObj = (namespace: string, name: string, entries: string[] = []): WatchedObject =>
  ({
    metadata: { namespace, name, resourceVersion: nextRv(), managedFields: [{ manager: 'kcm' }] },
    imagePullSecrets: entries.map((n) => ({ name: n })),
  }) as WatchedObject;
const secretObj = (namespace: string, name: string, password = 'v1'): WatchedObject =>
  ({
    metadata: {
      namespace,
      name,
      uid: `uid-${name}`,
      resourceVersion: nextRv(),
      labels: { 'app.kubernetes.io/managed-by': 'tcr-assistant' },
      annotations: { 'tcr.tencentcloudcr.com/imagepullsecret': 'cr1' },
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(password).toString('base64') },
  }) as WatchedObject;
const crObj = (name: string, generation = 1): WatchedObject =>
  ({
    metadata: { name, uid: `uid-${name}`, generation, resourceVersion: nextRv() },
    spec: { namespaces: '*', docker: { server: 'r.example.com', username: 'u', password: 'p' } },
    status: { secretUpdateSuccessful: [{ namespacedName: 'a/b', updatedAt: 'now' }] },
  }) as WatchedObject;

/** The live port: answers from its own little world and counts every call. */
class FakeLive implements LiveCluster {
  readonly clusterId = 'c1';
  calls: string[] = [];
  namespaces = new Map<string, NamespaceView>();
  crs: CrView[] = [];
  private note(call: string) {
    this.calls.push(call);
  }
  async getNamespace(name: string) {
    this.note(`getNamespace ${name}`);
    return this.namespaces.get(name);
  }
  async listNamespaces() {
    this.note('listNamespaces');
    return [...this.namespaces.values()];
  }
  async getImagePullSecret(name: string) {
    this.note(`getImagePullSecret ${name}`);
    return this.crs.find((c) => c.name === name);
  }
  async listImagePullSecrets() {
    this.note('listImagePullSecrets');
    return this.crs;
  }
  async withIssuedCredentials(crs: CrView[]) {
    return crs;
  }
  async listOurSecrets(namespace: string): Promise<SecretView[]> {
    this.note(`listOurSecrets ${namespace}`);
    return [];
  }
  async listSecretsNamed(name: string): Promise<SecretView[]> {
    this.note(`listSecretsNamed ${name}`);
    return [];
  }
  async secretNamesPresent(namespace: string) {
    this.note(`secretNamesPresent ${namespace}`);
    return new Set<string>();
  }
  async listServiceAccounts(namespace?: string): Promise<ServiceAccountView[]> {
    this.note(`listServiceAccounts ${namespace ?? '*'}`);
    return [];
  }
  async getServiceAccount(namespace: string, name: string) {
    this.note(`getServiceAccount ${namespace}/${name}`);
    return undefined;
  }
  async findSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    this.note(`findSecret ${namespace}/${name}`);
    return undefined;
  }
  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    this.note(`createSecret ${secret.namespace}/${secret.name}`);
    return 'created';
  }
  async replaceSecret(secret: DesiredSecret) {
    this.note(`replaceSecret ${secret.namespace}/${secret.name}`);
  }
  async deleteSecret(namespace: string, name: string) {
    this.note(`deleteSecret ${namespace}/${name}`);
    return 'deleted' as const;
  }
  async patchServiceAccountPullSecrets(sa: ServiceAccountView, _add: string[], remove: string[]) {
    this.note(`patchServiceAccount ${sa.namespace}/${sa.name}${remove.length > 0 ? ` -[${remove}]` : ''}`);
    return 'patched' as const;
  }
  async setFinalizer() {
    return 'done' as const;
  }
  async writeStatus(_cr: CrView, _status: ImagePullSecretStatus): Promise<'done' | 'gone'> {
    return 'done';
  }
  async emitEvent() {}
}

const desired = (namespace: string, name: string): DesiredSecret => ({
  namespace,
  name,
  type: 'kubernetes.io/dockerconfigjson',
  labels: {},
  data: {},
});

interface Setup {
  view: ClusterView;
  live: FakeLive;
  cols: Record<ViewKind, FakeCollection>;
  reads: string[];
  enqueued: Enqueue[];
  secretChanges: string[];
  clock: { now: number };
}

let current: Setup | undefined;
afterEach(async () => {
  await current?.view.stop();
  current = undefined;
});

function setup(open = true): Setup {
  const cols = {
    namespace: new FakeCollection(open),
    serviceaccount: new FakeCollection(open),
    imagepullsecret: new FakeCollection(open),
    secret: new FakeCollection(open),
  };
  const reads: string[] = [];
  const enqueued: Enqueue[] = [];
  const secretChanges: string[] = [];
  const clock = { now: 1_000_000 };
  const view = new ClusterView({
    clusterId: 'c1',
    collections: cols,
    enqueue: (items) => enqueued.push(...items),
    onSecretChange: (c) => secretChanges.push(`${c.type} ${c.key}`),
    log: createLogger('test', 'silent'),
    watchMetrics: noMetrics,
    observer: {
      read: (kind, result) => reads.push(`${kind} ${result}`),
      rerun: () => {},
      behind: () => reads.push('behind'),
    },
    now: () => clock.now,
  });
  current = { view, live: new FakeLive(), cols, reads, enqueued, secretChanges, clock };
  return current;
}

async function synced(s: Setup): Promise<void> {
  s.view.start();
  await waitFor('the view to list and watch every kind', () =>
    (['namespace', 'serviceaccount', 'imagepullsecret', 'secret'] as const).every(
      (k) => s.view.isLive(k) && s.cols[k].watching,
    ),
  );
}

const nsJob = (name: string): JobKey => ({ cluster: 'c1', kind: 'namespace', name });
const saJob = (namespace: string, name: string): JobKey => ({
  cluster: 'c1',
  kind: 'serviceaccount',
  namespace,
  name,
});

describe('ClusterView: a namespace job converged from the view', () => {
  it('reads nothing live once synced, and keeps only the fields the planner needs', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a', { team: 'x' }));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    s.cols.imagepullsecret.put(crObj('cr1'));
    await synced(s);
    const port = s.view.over(s.live, nsJob('a'));

    const ns = await port.getNamespace('a');
    const crs = await port.listImagePullSecrets();
    const secrets = await port.listOurSecrets('a');
    const sas = await port.listServiceAccounts('a');

    expect(s.live.calls).toEqual([]);
    expect(ns).toEqual({ name: 'a', labels: { team: 'x' }, annotations: {}, terminating: false });
    expect(crs.map((c) => [c.name, c.status])).toEqual([['cr1', {}]]);
    expect(crs[0]?.credential).toEqual({ server: 'r.example.com', username: 'u', password: 'p' });
    expect(secrets).toHaveLength(1);
    expect(secrets[0]?.ourLastWrite).toBeUndefined(); // no write of ours in its managedFields
    // No credentials in the view: the data's digest only (all the planner needs is equality).
    expect(secrets[0]?.data).toEqual({});
    expect(secrets[0]?.dataDigest).toBe(
      secretDataDigest({ '.dockerconfigjson': Buffer.from('v1').toString('base64') }),
    );
    expect(JSON.stringify(secrets)).not.toContain(Buffer.from('v1').toString('base64'));
    expect(sas.map((sa) => sa.imagePullSecrets)).toEqual([['tcr.ipscr1']]);
    expect(sas[0]?.ourLastWrite).toBeUndefined();
    expect(s.reads).toEqual(['namespace hit', 'imagepullsecret hit', 'secret hit', 'serviceaccount hit']);
  });

  it('reads live while a kind has not been listed (never decides from an unsynced view)', async () => {
    const s = setup(false);
    s.view.start();
    const port = s.view.over(s.live, nsJob('a'));
    await port.getNamespace('a');
    await port.listImagePullSecrets();
    await port.listOurSecrets('a');
    await port.listServiceAccounts('a');
    await port.getServiceAccount('a', 'default');
    expect(s.live.calls).toEqual([
      'getNamespace a',
      'listImagePullSecrets',
      'listOurSecrets a',
      'listServiceAccounts a',
      'getServiceAccount a/default',
    ]);
    expect(s.reads.every((r) => r.endsWith('fallback'))).toBe(true);
    for (const c of Object.values(s.cols)) c.open();
  });

  it('reads the subject live when the view does not have it yet (a miss)', async () => {
    const s = setup();
    await synced(s);
    await s.view.over(s.live, nsJob('new')).getNamespace('new');
    await s.view.over(s.live, saJob('new', 'default')).getServiceAccount('new', 'default');
    expect(s.live.calls).toEqual(['getNamespace new', 'getServiceAccount new/default']);
    expect(s.reads).toEqual(['namespace miss', 'serviceaccount miss']);
  });

  it('follows watch events: added, modified, deleted', async () => {
    const s = setup();
    await synced(s);
    s.cols.namespace.put(nsObj('b', { v: '1' }));
    s.cols.namespace.put(nsObj('b', { v: '2' }));
    const port = s.view.over(s.live, nsJob('b'));
    expect((await port.getNamespace('b'))?.labels).toEqual({ v: '2' });
    s.cols.namespace.remove(nsObj('b'));
    expect(await port.getNamespace('b')).toBeUndefined();
    expect(s.live.calls).toEqual(['getNamespace b']);
  });
});

describe('ClusterView: our own writes', () => {
  it('reads a namespace with a write of ours live until the view has seen that write', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    await synced(s);
    const first = s.view.over(s.live, nsJob('a'));
    expect(await first.createSecret(desired('a', 'tcr.ipscr1'))).toBe('created');

    const second = s.view.over(s.live, saJob('a', 'default'));
    await second.listOurSecrets('a');
    expect(s.live.calls).toEqual(['createSecret a/tcr.ipscr1', 'listOurSecrets a']);

    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    expect(await second.listOurSecrets('a')).toHaveLength(1);
    expect(s.live.calls).toHaveLength(2);
  });

  it('a create that found the Secret already there (409) holds no read live when the view has that Secret', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.namespace.put(nsObj('b'));
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    await synced(s);
    s.live.createSecret = async (secret: DesiredSecret) => {
      s.live.calls.push(`createSecret ${secret.namespace}/${secret.name}`);
      return 'exists' as const;
    };
    const port = s.view.over(s.live, saJob('a', 'default'));
    expect(await port.createSecret(desired('a', 'tcr.ipscr1'))).toBe('exists');
    expect(await port.listOurSecrets('a')).toHaveLength(1);
    // Not in the view yet: the other job's write is still on its way, so the namespace stays read live.
    expect(await port.createSecret(desired('b', 'tcr.ipscr1'))).toBe('exists');
    await port.listOurSecrets('b');
    expect(s.live.calls).toEqual([
      'createSecret a/tcr.ipscr1',
      'createSecret b/tcr.ipscr1',
      'listOurSecrets b',
    ]);
  });

  it('stops waiting for a write the view never sees after the dirty period', async () => {
    const s = setup();
    s.cols.serviceaccount.put(saObj('a', 'default'));
    await synced(s);
    const port = s.view.over(s.live, nsJob('a'));
    const sa = await port.getServiceAccount('a', 'default');
    await port.patchServiceAccountPullSecrets(sa!, ['tcr.ipscr1'], []);
    await port.getServiceAccount('a', 'default');
    s.clock.now += 11_000;
    await port.getServiceAccount('a', 'default');
    expect(s.live.calls).toEqual(['patchServiceAccount a/default', 'getServiceAccount a/default']);
  });
});

describe('ClusterView: staleness', () => {
  it('reruns a job whose subject changes in the view after it was served an older version', async () => {
    const s = setup();
    s.cols.serviceaccount.put(saObj('a', 'app', ['tcr.ipscr1']));
    s.cols.namespace.put(nsObj('a', { team: 'x' }));
    await synced(s);
    await s.view.over(s.live, saJob('a', 'app')).getServiceAccount('a', 'app');
    await s.view.over(s.live, nsJob('a')).getNamespace('a');

    // Only an entry of ours added (our own patch's echo): nothing the job got wrong.
    s.cols.serviceaccount.put(saObj('a', 'app', ['tcr.ipscr1', 'tcr.ipscr2']));
    expect(s.enqueued).toEqual([]);
    // Someone removed our entry: the job's decision is re-made.
    s.cols.serviceaccount.put(saObj('a', 'app', ['tcr.ipscr2']));
    s.cols.namespace.put(nsObj('a', { team: 'y' }));
    expect(s.enqueued).toEqual([
      { key: saJob('a', 'app'), trigger: 'modified' },
      { key: nsJob('a'), trigger: 'modified' },
    ]);
    // Once: a later change goes through the relay as usual.
    s.cols.namespace.put(nsObj('a', { team: 'z' }));
    expect(s.enqueued).toHaveLength(2);
  });

  it('forgets what it served after the served period', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a', { team: 'x' }));
    await synced(s);
    await s.view.over(s.live, nsJob('a')).getNamespace('a');
    s.clock.now += 301_000;
    s.cols.namespace.put(nsObj('a', { team: 'y' }));
    expect(s.enqueued).toEqual([]);
  });

  it('reruns the CR job when a CR the jobs were served changes in a way the plan depends on', async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1', 1));
    await synced(s);
    await s.view.over(s.live, nsJob('a')).listImagePullSecrets();
    s.cols.imagepullsecret.put({ ...crObj('cr1', 1), status: { secretsSuccess: 3 } } as WatchedObject);
    expect(s.enqueued).toEqual([]);
    s.cols.imagepullsecret.put(crObj('cr1', 2));
    expect(s.enqueued).toEqual([
      { key: { cluster: 'c1', kind: 'imagepullsecret', name: 'cr1' }, trigger: 'modified' },
    ]);
  });

  it('reruns the CR job (as a deletion) when a CR the jobs were served is deleted', async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1', 1));
    await synced(s);
    await s.view.over(s.live, nsJob('a')).listImagePullSecrets();
    s.cols.imagepullsecret.remove(crObj('cr1', 1));
    expect(s.enqueued).toEqual([
      { key: { cluster: 'c1', kind: 'imagepullsecret', name: 'cr1' }, trigger: 'deleted' },
    ]);
    expect(await s.view.over(s.live, nsJob('a')).listImagePullSecrets()).toEqual([]);
  });

  it("reads the CRs live for a CR job's fan-out (the CR job read them live just before)", async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1', 1));
    s.cols.namespace.put(nsObj('a'));
    await synced(s);
    const port = s.view.over(s.live, nsJob('a'), { liveCrs: true });
    await port.getNamespace('a');
    await port.listImagePullSecrets();
    expect(s.live.calls).toEqual(['listImagePullSecrets']);
    await port.replaceSecret(desired('a', 'tcr.ipscr1'), '5');
    expect(s.live.calls).toEqual(['listImagePullSecrets', 'replaceSecret a/tcr.ipscr1']);
  });

  it('confirms the CRs live before a rewrite or deletion planned from them, and refuses when they moved', async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1', 1));
    await synced(s);
    const port = s.view.over(s.live, nsJob('a'));
    const crs = await port.listImagePullSecrets();
    s.live.crs = [{ ...(crs[0] as CrView), generation: 2 }];
    await expect(port.replaceSecret(desired('a', 'tcr.ipscr1'), '5')).rejects.toBeInstanceOf(RetryableError);
    expect(s.live.calls).toEqual(['listImagePullSecrets']);
    expect(s.reads).toContain('behind');

    const again = s.view.over(s.live, nsJob('a'));
    s.live.crs = await again.listImagePullSecrets();
    await again.replaceSecret(desired('a', 'tcr.ipscr1'), '5');
    await again.deleteSecret('a', 'tcr.ipsold', 'u', '6');
    expect(s.live.calls.slice(1)).toEqual([
      'listImagePullSecrets',
      'replaceSecret a/tcr.ipscr1',
      'deleteSecret a/tcr.ipsold',
    ]);
  });

  it('hands every later change of our Secrets to the repair, after applying it', async () => {
    const s = setup();
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    await synced(s);
    expect(s.secretChanges).toEqual([]);
    s.cols.secret.remove(secretObj('a', 'tcr.ipscr1'));
    expect(s.secretChanges).toEqual(['deleted a/tcr.ipscr1']);
    expect(await s.view.over(s.live, nsJob('a')).listOurSecrets('a')).toEqual([]);
  });
});

/** The real core (reconcileNamespace / reconcileServiceAccount) over the view, as the worker runs it. */
const depsOver = (s: Setup, key: JobKey): ReconcileDeps => ({
  cluster: s.view.over(s.live, key),
  queue: {
    enqueue: async (items: Enqueue[]) => {
      s.enqueued.push(...items);
    },
  },
  failures: { record: async () => {}, clear: async () => {}, list: async () => [] } as never,
  now: () => new Date(s.clock.now),
  statusDelayMs: 0,
  log: createLogger('test', 'silent'),
  directUpdateBudget: 0,
  isFinalAttempt: false,
});

// Review of #15 (notes/15-view-review.md, finding 1): an entry removal planned from a view that lacks a live
// CR took the entry away from pods admitted meanwhile. In each case the live API has cr1 and the view not.
describe('ClusterView: removals are confirmed live before they are made', () => {
  it('namespace job: an entry of a CR the view has not seen yet is not removed as dangling', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    await synced(s);
    s.live.crs = [stripCr(crObj('cr1'))];
    await expect(reconcileNamespace(depsOver(s, nsJob('a')), 'a')).rejects.toBeInstanceOf(RetryableError);
    expect(s.live.calls.sort()).toEqual(['getNamespace a', 'listImagePullSecrets', 'secretNamesPresent a']);
    expect(s.reads).toContain('behind');
  });

  it('ServiceAccount job: our entry is not removed when the view lacks the CR', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'ci', ['tcr.ipscr1']));
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    await synced(s);
    s.live.crs = [stripCr(crObj('cr1'))];
    await expect(reconcileServiceAccount(depsOver(s, saJob('a', 'ci')), 'a', 'ci')).rejects.toBeInstanceOf(
      RetryableError,
    );
    expect(s.live.calls.filter((c) => c.startsWith('patch'))).toEqual([]);
    expect(s.live.calls).toContain('listImagePullSecrets');
  });

  it('namespace job: the entry is not removed before the deletion is confirmed', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    await synced(s);
    s.live.crs = [stripCr(crObj('cr1'))];
    await expect(reconcileNamespace(depsOver(s, nsJob('a')), 'a')).rejects.toBeInstanceOf(RetryableError);
    expect(s.live.calls.filter((c) => c.startsWith('patch') || c.startsWith('delete'))).toEqual([]);
  });

  it('namespace job: a removal planned from a stale namespace (skip annotation not seen yet) is refused', async () => {
    const s = setup();
    const cr = crObj('cr1');
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.secret.put(secretObj('a', 'tcr.ipscr1'));
    s.cols.imagepullsecret.put(cr);
    await synced(s);
    s.live.crs = [stripCr(cr)];
    // The view still has the namespace with the skip annotation the user has since removed.
    const stale = nsObj('a');
    stale.metadata = { ...stale.metadata, annotations: { 'tcr.tencentcloudcr.com/skip': 'true' } };
    s.cols.namespace.put(stale);
    s.live.namespaces.set('a', stripNamespace(nsObj('a')));
    await expect(reconcileNamespace(depsOver(s, nsJob('a')), 'a')).rejects.toBeInstanceOf(RetryableError);
    expect(s.live.calls.filter((c) => c.startsWith('patch') || c.startsWith('delete'))).toEqual([]);
    expect(s.live.calls).toContain('getNamespace a');
  });

  it('a removal the live CRs and namespace agree with goes ahead after one confirmation', async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipsgone']));
    s.cols.serviceaccount.put(saObj('a', 'ci', ['tcr.ipsgone']));
    await synced(s);
    s.live.namespaces.set('a', stripNamespace(nsObj('a')));
    await reconcileNamespace(depsOver(s, nsJob('a')), 'a');
    expect(s.live.calls.sort()).toEqual([
      'getNamespace a',
      'listImagePullSecrets',
      'patchServiceAccount a/ci -[tcr.ipsgone]',
      'patchServiceAccount a/default -[tcr.ipsgone]',
      'secretNamesPresent a',
    ]);
  });
});

// Review of #15, findings 2-4 and 8.
describe('ClusterView: what reads live after the review', () => {
  it("a ServiceAccount job's namespace read is noted: a later change of the namespace reruns its namespace job", async () => {
    const s = setup();
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'builder'));
    await synced(s);
    await reconcileServiceAccount(depsOver(s, saJob('a', 'builder')), 'a', 'builder');
    expect(s.enqueued).toEqual([]);
    s.cols.namespace.put(nsObj('a', { tcr: 'on' }));
    expect(s.enqueued).toEqual([{ key: nsJob('a'), trigger: 'modified' }]);
  });

  it('retries, the resync (and its fan-out) and the CLI read live; first attempts of the rest from the view', () => {
    const cause = (key: JobKey, trigger: 'modified' | 'fanout' | 'resync' | 'cli') => ({ key, trigger });
    expect(readsFromView(cause(nsJob('a'), 'modified'), 1)).toBe(true);
    expect(readsFromView(cause(saJob('a', 'b'), 'fanout'), 1)).toBe(true);
    expect(readsFromView(cause(nsJob('a'), 'modified'), 2)).toBe(false);
    expect(readsFromView(cause(nsJob('a'), 'resync'), 1)).toBe(false);
    expect(readsFromView(cause(nsJob('a'), 'cli'), 1)).toBe(false);
    expect(readsFromView(cause({ cluster: 'c1', kind: 'imagepullsecret', name: 'x' }, 'modified'), 1)).toBe(
      false,
    );
  });

  it('a CR deleted live but still in the view: a deletion planned from it is refused', async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1'));
    s.cols.imagepullsecret.put(crObj('cr2'));
    await synced(s);
    const port = s.view.over(s.live, nsJob('a'));
    const crs = await port.listImagePullSecrets();
    s.live.crs = crs.filter((c) => c.name === 'cr1'); // cr2 deleted; the view has not seen it yet
    await expect(port.deleteSecret('a', 'tcr.ipsold', 'u', '6')).rejects.toBeInstanceOf(RetryableError);
    expect(s.live.calls).toEqual(['listImagePullSecrets']);
  });
});

describe('ClusterView: Secret digests and kinds that do not parse', () => {
  it('a Secret converged with the desired data (compared by digest) costs no write and no live read', async () => {
    const s = setup();
    const cr = crObj('cr1');
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.imagepullsecret.put(cr);
    const body = toSecretBody(desiredSecretFor(stripCr(cr), 'a'));
    s.cols.secret.put({
      ...body,
      metadata: { ...body.metadata, uid: 'u1', resourceVersion: nextRv() },
    } as WatchedObject);
    await synced(s);
    const result = await reconcileNamespace(depsOver(s, nsJob('a')), 'a');
    expect(result.actions.filter((a) => a.verb !== 'noop')).toEqual([]);
    expect(s.live.calls).toEqual([]);

    // Another password: the digest differs, the Secret is rewritten (after the live confirmation).
    const rotated = crObj('cr1', 2);
    (rotated.spec as { docker: { password: string } }).docker.password = 'p2';
    s.cols.imagepullsecret.put(rotated);
    s.live.crs = [stripCr(rotated)];
    await reconcileNamespace(depsOver(s, nsJob('a')), 'a');
    expect(s.live.calls).toEqual(['listImagePullSecrets', 'replaceSecret a/tcr.ipscr1']);
  });

  it('upgrade: our Secret as an earlier version wrote it (CR-name annotation) is converged: no write, no live read', async () => {
    const s = setup();
    const cr = crObj('cr1');
    s.cols.namespace.put(nsObj('a'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.imagepullsecret.put(cr);
    const body = toSecretBody(desiredSecretFor(stripCr(cr), 'a'));
    expect(body.metadata?.annotations).toBeUndefined();
    s.cols.secret.put({
      ...body,
      metadata: {
        ...body.metadata,
        annotations: { 'tcr.tencentcloudcr.com/imagepullsecret': 'cr1' },
        uid: 'u1',
        resourceVersion: nextRv(),
      },
    } as WatchedObject);
    await synced(s);
    const result = await reconcileNamespace(depsOver(s, nsJob('a')), 'a');
    expect(result.actions.filter((a) => a.verb !== 'noop')).toEqual([]);
    expect(s.live.calls).toEqual([]);
  });

  it('a kind whose list does not parse is read live until a list parses', async () => {
    const s = setup();
    s.cols.imagepullsecret.put(crObj('cr1'));
    s.cols.imagepullsecret.put({ metadata: { name: 'bad' } } as WatchedObject); // no uid: does not parse
    s.view.start();
    await waitFor('every kind listed and watched', () => Object.values(s.cols).every((c) => c.watching));
    expect(s.view.isLive('namespace')).toBe(true);
    expect(s.view.isLive('imagepullsecret')).toBe(false);
    await s.view.over(s.live, nsJob('a')).listImagePullSecrets();
    expect(s.live.calls).toEqual(['listImagePullSecrets']);
  });

  it('a kind with an event that does not parse is read live', async () => {
    const s = setup();
    await synced(s);
    s.cols.imagepullsecret.put({ metadata: { name: 'bad', resourceVersion: nextRv() } } as WatchedObject);
    expect(s.view.isLive('imagepullsecret')).toBe(false);
    expect(s.view.isLive('secret')).toBe(true);
  });
});

/** Our Secret of cr1 in `namespace` as the API holds it (owner reference, our field manager), `password` inside. */
function ourSecretObj(
  cr: CrView,
  namespace: string,
  o: { password?: string; at?: string } = {},
): WatchedObject {
  const body = toSecretBody(
    desiredSecretFor(
      o.password
        ? { ...cr, credential: { server: 'r.example.com', username: 'u', password: o.password } }
        : cr,
      namespace,
    ),
  );
  return {
    ...body,
    metadata: {
      ...body.metadata,
      uid: `uid-${namespace}`,
      resourceVersion: nextRv(),
      managedFields: [{ manager: FIELD_MANAGER, operation: 'Update', time: o.at ?? '2026-01-01T00:00:00Z' }],
    },
  } as WatchedObject;
}

/** A CR job's dependencies: the live port (a CR job reads live) and the view beside it. */
const crJobDeps = (s: Setup, budget = 100): ReconcileDeps => ({
  ...depsOver(s, nsJob('a')),
  cluster: s.live,
  view: s.view,
  directUpdateBudget: budget,
  trigger: 'modified',
});

describe('ClusterView: what a CR job reads of it', () => {
  it('is given to the CR job and to its status refresh (and to no other job)', () => {
    const cause = (kind: 'imagepullsecret' | 'imagepullsecret-status' | 'namespace') => ({
      key: kind === 'namespace' ? nsJob('a') : { cluster: 'c1', kind, name: 'cr1' },
      trigger: 'modified' as const,
    });
    expect(crJobReadsView(cause('imagepullsecret'))).toBe(true);
    expect(crJobReadsView(cause('imagepullsecret-status'))).toBe(true);
    expect(crJobReadsView(cause('namespace'))).toBe(false);
    expect(crJobReadsView(undefined)).toBe(false);
  });

  const cr1 = (): CrView => ({ ...stripCr(crObj('cr1')), finalizers: [FINALIZER] });

  it('a rotation rewrites our stale Secrets from the view before any cluster-wide list', async () => {
    const s = setup();
    const cr = cr1();
    s.cols.namespace.put(nsObj('a'));
    s.cols.namespace.put(nsObj('b'));
    s.cols.namespace.put(nsObj('c'));
    s.cols.secret.put(ourSecretObj(cr, 'a', { password: 'old' }));
    s.cols.secret.put(ourSecretObj(cr, 'b', { password: 'old' }));
    s.cols.secret.put(ourSecretObj(cr, 'c')); // already current
    await synced(s);
    s.live.crs = [cr];
    await reconcileImagePullSecret(crJobDeps(s), 'cr1', { fanOut: true });
    const calls = s.live.calls;
    expect(calls.slice(0, 3)).toEqual([
      'getImagePullSecret cr1',
      'replaceSecret a/tcr.ipscr1',
      'replaceSecret b/tcr.ipscr1',
    ]);
    // The full plan still reads live (ADR-015), after the rewrites.
    expect(calls.slice(3).sort()).toEqual([
      'listNamespaces',
      'listSecretsNamed tcr.ipscr1',
      'listServiceAccounts *',
    ]);
  });

  it('leaves a Secret we are writing (not seen back yet) and a resync to the live plan', async () => {
    const s = setup();
    const cr = cr1();
    s.cols.namespace.put(nsObj('a'));
    s.cols.secret.put(ourSecretObj(cr, 'a', { password: 'old' }));
    await synced(s);
    s.live.crs = [cr];
    expect(s.view.ourSecretsNamed('tcr.ipscr1')?.secrets).toHaveLength(1);
    s.view.markDirty('secret', 'a', 'tcr.ipscr1');
    expect(s.view.ourSecretsNamed('tcr.ipscr1')?.secrets).toEqual([]);
    await reconcileImagePullSecret({ ...crJobDeps(s), trigger: 'resync' }, 'cr1', { fanOut: true });
    expect(s.live.calls[1]).not.toMatch(/^replaceSecret/);
  });

  it('answers nothing for rewrites or counts before its watches are open', async () => {
    const s = setup(false);
    s.view.start();
    expect(s.view.ourSecretsNamed('tcr.ipscr1')).toBeUndefined();
    expect(s.view.stateFor('tcr.ipscr1')).toBeUndefined();
  });

  it('a status refresh counts from the view: no cluster-wide list, our last writes kept for the status lists', async () => {
    const s = setup();
    const cr = cr1();
    s.cols.namespace.put(nsObj('a'));
    s.cols.namespace.put(nsObj('b'));
    s.cols.serviceaccount.put(saObj('a', 'default', ['tcr.ipscr1']));
    s.cols.serviceaccount.put(saObj('b', 'default', ['tcr.ipscr1']));
    s.cols.secret.put(ourSecretObj(cr, 'a', { at: '2026-01-01T00:00:01Z' }));
    s.cols.secret.put(ourSecretObj(cr, 'b', { at: '2026-01-01T00:00:02Z' }));
    await synced(s);
    s.live.crs = [cr];
    let written: unknown;
    s.live.writeStatus = async (_cr, status) => {
      written = status;
      return 'done' as const;
    };
    await reconcileImagePullSecret(crJobDeps(s), 'cr1', { fanOut: false });
    expect(s.live.calls).toEqual(['getImagePullSecret cr1']);
    expect(written).toMatchObject({
      secretsDesired: 2,
      secretsSuccess: 2,
      secretUpdateSuccessful: [
        { namespacedName: 'b/tcr.ipscr1', updatedAt: '2026-01-01T00:00:02Z' },
        { namespacedName: 'a/tcr.ipscr1', updatedAt: '2026-01-01T00:00:01Z' },
      ],
    });
  });

  it("a wanted namespace without our Secret in the view is looked up live (someone else's Secret: a conflict)", async () => {
    const s = setup();
    const cr = cr1();
    s.cols.namespace.put(nsObj('a'));
    s.cols.namespace.put(nsObj('b'));
    s.cols.secret.put(ourSecretObj(cr, 'a'));
    await synced(s);
    s.live.crs = [cr];
    s.live.findSecret = async (namespace: string, name: string) => {
      s.live.calls.push(`findSecret ${namespace}/${name}`);
      return {
        namespace,
        name,
        uid: 'x',
        resourceVersion: '1',
        type: 'Opaque',
        ours: false,
        labels: {},
        annotations: {},
        data: {},
      };
    };
    let written: { failedNamespaces?: { namespace: string; reason: string }[] } | undefined;
    s.live.writeStatus = async (_cr, status) => {
      written = status;
      return 'done' as const;
    };
    await reconcileImagePullSecret(crJobDeps(s), 'cr1', { fanOut: false });
    expect(s.live.calls).toEqual(['getImagePullSecret cr1', 'findSecret b/tcr.ipscr1']);
    expect(written?.failedNamespaces?.map((f) => [f.namespace, f.reason])).toEqual([['b', 'Conflict']]);
  });

  it('reads live while a write of ours is not seen back, when too many namespaces lack our Secret, when the count shows work in progress, and for a CR being deleted', async () => {
    const s = setup();
    const cr = cr1();
    for (let i = 0; i < 25; i++) s.cols.namespace.put(nsObj(`n${i}`));
    await synced(s);
    s.live.crs = [cr];
    await reconcileImagePullSecret(crJobDeps(s), 'cr1', { fanOut: false });
    expect(s.live.calls.filter((c) => c.startsWith('list')).sort()).toEqual([
      'listNamespaces',
      'listSecretsNamed tcr.ipscr1',
      'listServiceAccounts *',
    ]);

    const t = setup();
    t.cols.namespace.put(nsObj('a'));
    t.cols.secret.put(ourSecretObj(cr, 'a'));
    await synced(t);
    t.live.crs = [cr];
    t.view.markDirty('serviceaccount', 'a', 'default');
    await reconcileImagePullSecret(crJobDeps(t), 'cr1', { fanOut: false });
    expect(t.live.calls).toContain('listNamespaces');
    t.clock.now += 11_000; // the mark expires: the view answers again
    t.live.calls = [];
    await reconcileImagePullSecret(crJobDeps(t), 'cr1', { fanOut: false });
    expect(t.live.calls).toEqual(['getImagePullSecret cr1']);

    // A count short of converged (the view may lack a write) is read again live.
    t.cols.secret.put(ourSecretObj(cr, 'a', { password: 'old' }));
    t.live.calls = [];
    await reconcileImagePullSecret(crJobDeps(t), 'cr1', { fanOut: false });
    expect(t.live.calls).toContain('listSecretsNamed tcr.ipscr1');

    t.live.crs = [{ ...cr, deleting: true }];
    t.live.calls = [];
    await reconcileImagePullSecret(crJobDeps(t), 'cr1', { fanOut: false });
    expect(t.live.calls).toContain('listSecretsNamed tcr.ipscr1');
  });
});
