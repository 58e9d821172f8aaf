import { setMaxListeners } from 'node:events';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Namespace,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { backoffDelay, sleep } from '../../../shared/backoff.js';
import {
  FIELD_MANAGER,
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OUR_SECRETS_SELECTOR,
} from '../../../shared/contracts/labels.js';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../../shared/contracts/names.js';
import { abortable, bindSignal, type SignalBound } from '../../../shared/deadline.js';
import { RetryableError } from '../../../shared/errors.js';
import { signalOptions } from '../../../shared/kube/abort.js';
import { listWatchOf } from '../../../shared/kube/client-node-connection.js';
import type { KubeClient } from '../../../shared/kube/kube-client.js';
import { shareConnections } from '../../../shared/kube/kubeconfig.js';
import { encodeSecret, PROTOBUF } from '../../../shared/kube/protobuf.js';
import type { PlannedEvent } from '../../core/image-pull-secret/plan-image-pull-secret.js';
import type {
  CrView,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
  StoredToken,
} from '../../core/model.js';
import type { ClusterPort, CreateResult, CredentialCheckPort, TokenStorePort } from '../../core/ports.js';
import type { DesiredSecret } from '../../core/pull-secret/desired-secret.js';
import { tokenKeyOf } from '../../core/registry-tokens/token-store.js';
import { callApi, codeOf, messageOf, type RequestObserver } from './api-call.js';
import { getJson } from './raw-json.js';
import { toCrView, toNamespaceView, toSecretBody, toSecretView, toServiceAccountView } from './views.js';

const RAW_PAGE = 1000;
/** The signal of a request made outside any job's deadline (many at once: no listener limit). */
const NEVER = new AbortController().signal;
/**
 * Our Secret writes go as protobuf and ask for protobuf back (the answer is not read): kube-apiserver spends
 * 7–12 % less CPU per rewrite of our Secret than on JSON (bench/results/protobuf-writes-2026-11-30.md). Error answers come as
 * a protobuf Status, which the light client reads (`decodeStatus`).
 */
const PROTOBUF_BOTH_WAYS = { contentType: PROTOBUF, accept: PROTOBUF };
setMaxListeners(0, NEVER);
const EVENTS_NAMESPACE = 'default';

export class KubeCluster implements ClusterPort, SignalBound {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  /**
   * The Secret writes (a rotation's thousands of rewrites, a new namespace's create): plain JSON over the same
   * credentials and connection pool, without client-node's typed (de)serialization of every Secret, whose CPU
   * on a busy machine is taken from the API server.
   */
  private readonly light: KubeClient;
  /** The job's deadline (set on a per-job view by withSignal): every request carries it. */
  signal: AbortSignal | undefined;

  constructor(
    readonly clusterId: string,
    private readonly kc: KubeConfig,
    readonly observe: RequestObserver = () => {},
    /** Where spec.tcr CRs' issued tokens are (tcr-assistant-system); without it they wait for a credential. */
    private readonly tokens?: TokenStorePort,
    /** Each spec.tcr CR's own API-key source, checked: a CR whose source is unusable is refused, alone. */
    private readonly credentialChecks?: CredentialCheckPort,
  ) {
    shareConnections(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.light = listWatchOf(kc);
  }

  withSignal(signal: AbortSignal | undefined): this {
    const view = bindSignal(this, signal);
    // The issued-token reads of spec.tcr CRs happen inside this port's calls: they get the deadline too.
    const tokens = this.tokens as (TokenStorePort & Partial<SignalBound>) | undefined;
    if (tokens?.withSignal) (view as unknown as { tokens: unknown }).tokens = tokens.withSignal(signal);
    return view;
  }

  /** client-node options of this view's requests (its signal), optionally with a Content-Type. */
  private opts(contentType?: PatchStrategy) {
    const withSignal = signalOptions(this.signal);
    return contentType ? setHeaderOptions('Content-Type', contentType, withSignal) : withSignal;
  }

  async getNamespace(name: string): Promise<NamespaceView | undefined> {
    const ns = await this.call('get', 'namespaces', () => this.core.readNamespace({ name }, this.opts()), {
      notFound: undefined,
    });
    return ns && toNamespaceView(ns);
  }

  async listNamespaces(): Promise<NamespaceView[]> {
    const items = await this.rawList<V1Namespace>('namespaces', '/api/v1/namespaces', {});
    return items.map(toNamespaceView);
  }

  async getImagePullSecret(name: string): Promise<CrView | undefined> {
    const raw = await this.call(
      'get',
      PLURAL,
      () =>
        this.custom.getClusterCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, name },
          this.opts(),
        ),
      { notFound: undefined },
    );
    if (raw === undefined) return undefined;
    const [view] = await this.withIssuedCredentials([toCrView(raw)]);
    return view;
  }

  async listImagePullSecrets(): Promise<CrView[]> {
    const list = await this.call('list', PLURAL, () =>
      this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }, this.opts()),
    );
    const items = z.object({ items: z.array(z.unknown()) }).parse(list).items;
    return this.withIssuedCredentials(items.map(toCrView));
  }

  /**
   * Gives spec.tcr CRs the token the refresher stored for their registry (one read per token, not per CR).
   * Read on every job, not cached, so that a rotation is never undone by a job holding the old token. A CR
   * whose own key source (its credentialsSecretRef, or the environment) is unusable gets no token but the
   * reason: the token is shared, the right to it is per CR.
   */
  async withIssuedCredentials(crs: CrView[]): Promise<CrView[]> {
    const tokens = this.tokens;
    if (!tokens || !crs.some((cr) => cr.spec.tcr && !cr.invalid)) return crs;
    const reads = new Map<string, Promise<StoredToken | undefined>>();
    return Promise.all(
      crs.map(async (cr) => {
        const tcr = cr.spec.tcr;
        if (!tcr || cr.invalid) return cr;
        const problem = await this.credentialChecks?.check(tcr.credentialsSecretRef);
        if (problem !== undefined) return { ...cr, credentialProblem: problem };
        const key = tokenKeyOf(tcr.registryId, tcr.tokenType);
        if (!reads.has(key)) reads.set(key, tokens.readToken(key));
        const stored = await reads.get(key);
        // A token of another region is not this registry's (the same id in two regions is two instances).
        if (!stored || stored.region !== tcr.region) return cr;
        return {
          ...cr,
          credential: { server: cr.spec.docker.server, username: stored.username, password: stored.token },
        };
      }),
    );
  }

  async listOurSecrets(namespace: string): Promise<SecretView[]> {
    const list = await this.call('list', 'secrets', () =>
      this.core.listNamespacedSecret({ namespace, labelSelector: OUR_SECRETS_SELECTOR }, this.opts()),
    );
    return list.items.map(toSecretView);
  }

  async listSecretsNamed(name: string): Promise<SecretView[]> {
    const items = await this.rawList<V1Secret>('secrets', '/api/v1/secrets', {
      fieldSelector: `metadata.name=${name}`,
    });
    return items.map(toSecretView);
  }

  async secretNamesPresent(namespace: string, names: readonly string[]): Promise<Set<string>> {
    const present = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        const list = await this.call('list', 'secrets', () =>
          this.core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` }, this.opts()),
        );
        if (list.items.length > 0) present.add(name);
      }),
    );
    return present;
  }

  async listServiceAccounts(namespace?: string): Promise<ServiceAccountView[]> {
    const items = namespace
      ? (
          await this.call('list', 'serviceaccounts', () =>
            this.core.listNamespacedServiceAccount({ namespace }, this.opts()),
          )
        ).items
      : await this.rawList<V1ServiceAccount>('serviceaccounts', '/api/v1/serviceaccounts', {});
    return items.map(toServiceAccountView);
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccountView | undefined> {
    const sa = await this.call(
      'get',
      'serviceaccounts',
      () => this.core.readNamespacedServiceAccount({ namespace, name }, this.opts()),
      {
        notFound: undefined,
      },
    );
    return sa && toServiceAccountView(sa);
  }

  async findSecret(namespace: string, name: string): Promise<SecretView | undefined> {
    const list = await this.call('list', 'secrets', () =>
      this.core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` }, this.opts()),
    );
    const found = list.items[0];
    return found && toSecretView(found);
  }

  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    try {
      await this.call('create', 'secrets', () =>
        this.light.requestBytes(
          'POST',
          `/api/v1/namespaces/${encodeURIComponent(secret.namespace)}/secrets`,
          {
            ...PROTOBUF_BOTH_WAYS,
            body: encodeSecret(toSecretBody(secret)),
            query: { fieldManager: FIELD_MANAGER },
            signal: this.signal ?? NEVER,
          },
        ),
      );
      return 'created';
    } catch (error) {
      const code = codeOf(error);
      if (code === 404 || (code === 403 && /being terminated/.test(messageOf(error))))
        return 'namespace-gone';
      if (code !== 409) throw error;
    }
    // 409 AlreadyExists: ours (a concurrent job of ours made it) or someone else's (a conflict).
    const existing = (
      await this.call('list', 'secrets', () =>
        this.core.listNamespacedSecret(
          { namespace: secret.namespace, fieldSelector: `metadata.name=${secret.name}` },
          this.opts(),
        ),
      )
    ).items[0];
    if (existing?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) return 'exists';
    return existing ? 'conflict' : 'namespace-gone';
  }

  async replaceSecret(secret: DesiredSecret, resourceVersion: string): Promise<void> {
    const body = toSecretBody(secret);
    body.metadata = { ...body.metadata, resourceVersion };
    await this.call('update', 'secrets', () =>
      this.light.requestBytes(
        'PUT',
        `/api/v1/namespaces/${encodeURIComponent(secret.namespace)}/secrets/${encodeURIComponent(secret.name)}`,
        {
          ...PROTOBUF_BOTH_WAYS,
          body: encodeSecret(body),
          query: { fieldManager: FIELD_MANAGER },
          signal: this.signal ?? NEVER,
        },
      ),
    );
  }

  async deleteSecret(
    namespace: string,
    name: string,
    uid: string,
    resourceVersion: string,
  ): Promise<'deleted' | 'gone'> {
    const result = await this.call(
      'delete',
      'secrets',
      async () => {
        await this.core.deleteNamespacedSecret(
          { namespace, name, body: { preconditions: { uid, resourceVersion } } },
          this.opts(),
        );
        return 'deleted' as const;
      },
      { notFound: 'gone' as const },
    );
    return result;
  }

  async patchServiceAccountPullSecrets(
    sa: ServiceAccountView,
    add: string[],
    remove: string[],
  ): Promise<'patched' | 'unchanged' | 'gone'> {
    // ServiceAccount.imagePullSecrets is an atomic list: a strategic-merge patch would replace it whole.
    // So: a merge patch of the full new list, guarded by the resourceVersion it was computed from; on 409
    // re-read and recompute from the fresh list (a few quick tries, then the queue's backoff takes over).
    let current: ServiceAccountView | undefined = sa;
    for (let attempt = 1; ; attempt++) {
      if (!current) return 'gone';
      const next = applyEntryChanges(current.imagePullSecrets, add, remove);
      if (sameList(next, current.imagePullSecrets)) return 'unchanged';
      const body = {
        metadata: { resourceVersion: current.resourceVersion },
        imagePullSecrets: next.map((name) => ({ name })),
      };
      try {
        await this.call('patch', 'serviceaccounts', () =>
          this.core.patchNamespacedServiceAccount(
            { namespace: sa.namespace, name: sa.name, body, fieldManager: FIELD_MANAGER },
            this.opts(PatchStrategy.MergePatch),
          ),
        );
        return 'patched';
      } catch (error) {
        if (codeOf(error) === 404) return 'gone';
        if (codeOf(error) !== 409 || attempt >= 5) throw error;
      }
      await abortable(sleep(backoffDelay(attempt, 20, 200)), this.signal);
      current = await this.getServiceAccount(sa.namespace, sa.name);
    }
  }

  async setFinalizer(cr: CrView, present: boolean): Promise<'done' | 'gone'> {
    const index = cr.finalizers.indexOf(FINALIZER);
    // JSON patch with a test: applies only to the version we planned from, and never drops another
    // controller's finalizer.
    const body = present
      ? cr.finalizers.length === 0
        ? [
            { op: 'test', path: '/metadata/resourceVersion', value: cr.resourceVersion },
            { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
          ]
        : [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [
          { op: 'test', path: `/metadata/finalizers/${index}`, value: FINALIZER },
          { op: 'remove', path: `/metadata/finalizers/${index}` },
        ];
    if (!present && index < 0) return 'done';
    try {
      await this.call('patch', PLURAL, () =>
        this.custom.patchClusterCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            name: cr.name,
            body,
            fieldManager: FIELD_MANAGER,
          },
          this.opts(PatchStrategy.JsonPatch),
        ),
      );
      return 'done';
    } catch (error) {
      const code = codeOf(error);
      // Deleted since it was read (a CR deleted right after creation): nothing is left to clean or to track.
      if (code === 404) return 'gone';
      if (code === 409 || code === 422) {
        // Adding to a CR whose deletion began after our read (another job may have put our finalizer on it
        // first, so it lingers): the API server refuses new finalizers there. Nothing is owed by this job:
        // the deletion is an event of its own, and the job it causes cleans up.
        if (present) {
          const now = await this.getImagePullSecret(cr.name);
          if (!now || now.deleting) return 'gone';
        }
        throw new RetryableError(`finalizer of ImagePullSecret ${cr.name} changed concurrently`);
      }
      throw error;
    }
  }

  async writeStatus(cr: CrView, status: ImagePullSecretStatus): Promise<'done' | 'gone'> {
    return this.call(
      'patch',
      `${PLURAL}/status`,
      async () => {
        await this.custom.patchClusterCustomObjectStatus(
          {
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            name: cr.name,
            body: { status },
            fieldManager: FIELD_MANAGER,
          },
          this.opts(PatchStrategy.MergePatch),
        );
        return 'done' as const;
      },
      { notFound: 'gone' as const },
    );
  }

  async emitEvent(cr: CrView, event: PlannedEvent): Promise<void> {
    const now = new Date();
    await this.call('create', 'events', () =>
      this.core.createNamespacedEvent(
        {
          namespace: EVENTS_NAMESPACE,
          body: {
            metadata: { generateName: `${cr.name.slice(0, 200)}.` },
            involvedObject: { apiVersion: API_VERSION, kind: KIND, name: cr.name, uid: cr.uid },
            type: event.type,
            reason: event.reason,
            message: event.message,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
            source: { component: 'tcr-assistant' },
            reportingComponent: 'tcr-assistant',
            reportingInstance: 'tcr-assistant-functions',
          },
        },
        this.opts(),
      ),
    );
  }

  /** One API call of this view (its deadline, its observer): api-call.ts. */
  private call<T, N = never>(
    verb: string,
    resource: string,
    fn: () => Promise<T>,
    opts?: { notFound: N },
  ): Promise<T | N> {
    return callApi(this, verb, resource, fn, opts);
  }

  /**
   * A cluster-wide list, paginated, parsed with JSON.parse only. The CR and status jobs list every namespace
   * and ServiceAccount; client-node's typed deserialization of 10,000+ objects blocks the worker's event loop
   * for seconds (the benchmark's latency), and these views need only a few plain fields.
   */
  private async rawList<T>(resource: string, path: string, query: Record<string, string>): Promise<T[]> {
    const items: T[] = [];
    let token = '';
    do {
      const params = new URLSearchParams({
        ...query,
        limit: String(RAW_PAGE),
        ...(token ? { continue: token } : {}),
      });
      const list = await this.call('list', resource, () =>
        getJson<{ items: T[]; metadata?: { continue?: string } }>(this.kc, `${path}?${params}`, this.signal),
      );
      items.push(...list.items);
      token = list.metadata?.continue ?? '';
    } while (token);
    return items;
  }
}

/** The list with `remove` dropped and `add` appended (others' entries and their order kept, no duplicates). */
export function applyEntryChanges(current: string[], add: string[], remove: string[]): string[] {
  const drop = new Set(remove);
  const kept = current.filter((n, i) => !drop.has(n) && current.indexOf(n) === i);
  return [...kept, ...add.filter((n) => !kept.includes(n) && !drop.has(n))];
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);
