import https from 'node:https';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ManagedFieldsEntry,
  type V1Namespace,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { ImagePullSecretSpec } from '../../shared/contracts/image-pull-secret.js';
import {
  ADOPT_ANNOTATION,
  CR_NAME_ANNOTATION,
  FIELD_MANAGER,
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OUR_SECRETS_SELECTOR,
} from '../../shared/contracts/labels.js';
import { toMatchableNamespace } from '../../shared/contracts/matching.js';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../shared/contracts/names.js';
import { abortable, abortReason, bindSignal, type SignalBound } from '../../shared/deadline.js';
import { RetryableError, TerminalError } from '../../shared/errors.js';
import { signalOptions } from '../../shared/kube/abort.js';
import { shareConnections } from '../../shared/kube/kubeconfig.js';
import type { CredentialCheckPort } from '../core/credential-sources.js';
import type { DesiredSecret } from '../core/desired-secret.js';
import type {
  CrView,
  ImagePullSecretStatus,
  NamespaceView,
  SecretView,
  ServiceAccountView,
} from '../core/model.js';
import type { PlannedEvent } from '../core/plan-image-pull-secret.js';
import type { ClusterPort, CreateResult } from '../core/ports.js';
import { type StoredToken, type TokenStorePort, tokenKeyOf } from '../core/token-store.js';

/** Counts every API request by verb, resource and outcome: metrics, and the zero-writes checks. */
export type RequestObserver = (verb: string, resource: string, code: number) => void;

const RAW_PAGE = 1000;
const EVENTS_NAMESPACE = 'default';

/** The raw CR as the API returns it; the spec is validated separately so a bad one becomes `invalid`. */
const RawImagePullSecret = z.object({
  metadata: z.object({
    name: z.string(),
    uid: z.string(),
    generation: z.number().int().default(0),
    resourceVersion: z.string(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.unknown(),
  status: z.record(z.string(), z.unknown()).optional(),
});

const StatusShape = z
  .object({
    lastSyncedGeneration: z.number().optional(),
    secretsDesired: z.number().optional(),
    secretsSuccess: z.number().optional(),
    observedGeneration: z.number().optional(),
    conditions: z.array(z.any()).optional(),
    secretUpdateSuccessful: z.array(z.any()).optional(),
    serviceAccountsModifySuccessful: z.array(z.any()).optional(),
    failedNamespaces: z.array(z.any()).optional(),
  })
  .passthrough();

export class KubeCluster implements ClusterPort, SignalBound {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  /** The job's deadline (set on a per-job view by withSignal): every request carries it. */
  signal: AbortSignal | undefined;

  constructor(
    readonly clusterId: string,
    private readonly kc: KubeConfig,
    private readonly observe: RequestObserver = () => {},
    /** Where spec.tcr CRs' issued tokens are (tcr-assistant-system); without it they wait for a credential. */
    private readonly tokens?: TokenStorePort,
    /** Each spec.tcr CR's own API-key source, checked: a CR whose source is unusable is refused, alone. */
    private readonly credentialChecks?: CredentialCheckPort,
  ) {
    shareConnections(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
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
  private async withIssuedCredentials(crs: CrView[]): Promise<CrView[]> {
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
          this.core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` }),
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
      this.core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` }),
    );
    const found = list.items[0];
    return found && toSecretView(found);
  }

  async createSecret(secret: DesiredSecret): Promise<CreateResult> {
    try {
      await this.call('create', 'secrets', () =>
        this.core.createNamespacedSecret(
          { namespace: secret.namespace, body: toSecretBody(secret), fieldManager: FIELD_MANAGER },
          this.opts(),
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
      this.core.replaceNamespacedSecret(
        { namespace: secret.namespace, name: secret.name, body, fieldManager: FIELD_MANAGER },
        this.opts(),
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
      await abortable(new Promise((r) => setTimeout(r, Math.random() * 20 * attempt)), this.signal);
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
      if (code === 409 || code === 422)
        throw new RetryableError(`finalizer of ImagePullSecret ${cr.name} changed concurrently`);
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

  /**
   * Runs one API call, records it, and maps failures: 404 → `notFound` if given, else typed errors. A call
   * past the view's deadline fails with the deadline's error (the request itself is cancelled too).
   */
  private async call<T, N = never>(
    verb: string,
    resource: string,
    fn: () => Promise<T>,
    opts?: { notFound: N },
  ): Promise<T | N> {
    const what = `${verb} ${resource}`;
    try {
      const result = await abortable(fn(), this.signal, what);
      this.observe(verb, resource, 200);
      return result;
    } catch (error) {
      if (this.signal?.aborted) {
        this.observe(verb, resource, 0);
        throw abortReason(this.signal, what);
      }
      const code = codeOf(error) ?? 0;
      this.observe(verb, resource, code);
      if (code === 404 && opts && 'notFound' in opts) return opts.notFound;
      throw classify(error, what);
    }
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
        this.getJson<{ items: T[]; metadata?: { continue?: string } }>(`${path}?${params}`),
      );
      items.push(...list.items);
      token = list.metadata?.continue ?? '';
    } while (token);
    return items;
  }

  private async getJson<T>(pathAndQuery: string): Promise<T> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new TerminalError('the kubeconfig has no current cluster');
    const opts: https.RequestOptions = {
      method: 'GET',
      headers: { Accept: 'application/json' },
      timeout: 60_000,
      ...(this.signal ? { signal: this.signal } : {}),
    };
    await this.kc.applyToHTTPSOptions(opts);
    return new Promise<T>((resolve, reject) => {
      const req = https.request(new URL(pathAndQuery, server), opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) {
            try {
              resolve(JSON.parse(body) as T);
            } catch (error) {
              reject(error);
            }
          } else reject(new ApiException(code, `HTTP ${code}`, body, {}));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${pathAndQuery} timed out`)));
      req.on('error', reject);
      req.end();
    });
  }
}

/** The list with `remove` dropped and `add` appended (others' entries and their order kept, no duplicates). */
export function applyEntryChanges(current: string[], add: string[], remove: string[]): string[] {
  const drop = new Set(remove);
  const kept = current.filter((n, i) => !drop.has(n) && current.indexOf(n) === i);
  return [...kept, ...add.filter((n) => !kept.includes(n) && !drop.has(n))];
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The HTTP status of a failed call, whether still an ApiException or already classified by `call`. */
function codeOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (error instanceof RetryableError || error instanceof TerminalError) return error.status;
  return undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      return String((JSON.parse(String(error.body)) as { message?: string }).message ?? error.body);
    } catch {
      return String(error.body);
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Transient (429, 5xx, 409, network) → RetryableError; the rest (400, 401, 403, 422) → TerminalError:
 * retrying a refused permission or an invalid object only delays the visible failure. The API server's
 * messages name objects, not Secret contents, so they are safe to keep.
 */
export function classify(error: unknown, what: string): Error {
  if (error instanceof RetryableError || error instanceof TerminalError) return error;
  const code = codeOf(error);
  if (code === undefined)
    return new RetryableError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  const message = `${what}: HTTP ${code}: ${messageOf(error)}`;
  const classified =
    code === 409 || code === 429 || code >= 500 ? new RetryableError(message) : new TerminalError(message);
  classified.status = code;
  return classified;
}

const lastWriteBy = (entries: V1ManagedFieldsEntry[] | undefined): string | undefined =>
  (entries ?? [])
    .filter((e) => e.manager === FIELD_MANAGER && e.time)
    .map((e) => new Date(e.time as Date).toISOString().replace(/\.\d{3}Z$/, 'Z'))
    .sort()
    .pop();

const toNamespaceView = (ns: V1Namespace): NamespaceView => toMatchableNamespace(ns);

function toServiceAccountView(sa: V1ServiceAccount): ServiceAccountView {
  return {
    namespace: sa.metadata?.namespace ?? '',
    name: sa.metadata?.name ?? '',
    annotations: sa.metadata?.annotations ?? {},
    resourceVersion: sa.metadata?.resourceVersion ?? '',
    imagePullSecrets: (sa.imagePullSecrets ?? []).map((r) => r.name ?? '').filter((n) => n !== ''),
    ourLastWrite: lastWriteBy(sa.metadata?.managedFields),
  };
}

function toSecretView(s: V1Secret): SecretView {
  const labels = s.metadata?.labels ?? {};
  return {
    namespace: s.metadata?.namespace ?? '',
    name: s.metadata?.name ?? '',
    uid: s.metadata?.uid ?? '',
    resourceVersion: s.metadata?.resourceVersion ?? '',
    type: s.type ?? 'Opaque',
    ours: labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE,
    crName: s.metadata?.annotations?.[CR_NAME_ANNOTATION],
    labels,
    annotations: s.metadata?.annotations ?? {},
    // Only our own Secrets' contents are kept: a foreign Secret of the same name is only a conflict marker.
    data: labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? (s.data ?? {}) : {},
    ownerUid: s.metadata?.ownerReferences?.find((o) => o.kind === KIND)?.uid,
    ourLastWrite: lastWriteBy(s.metadata?.managedFields),
    dataKeys: Object.keys(s.data ?? {}).sort(),
    owners: (s.metadata?.ownerReferences ?? []).map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: o.name,
    })),
  };
}

function toSecretBody(secret: DesiredSecret): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secret.name,
      namespace: secret.namespace,
      labels: secret.labels,
      annotations: secret.annotations,
      ownerReferences: [{ ...secret.owner, controller: false, blockOwnerDeletion: false }],
    },
    type: secret.type,
    data: secret.data,
  };
}

/** `"true"` / `"false"`; anything else (or absent): the install-wide setting decides. */
function parseAdoptAnnotation(value: string | undefined): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

/** Parses a CR from the API; a spec that fails validation is kept as `invalid` with the reason. */
export function toCrView(raw: unknown): CrView {
  const cr = RawImagePullSecret.parse(raw);
  const spec = ImagePullSecretSpec.safeParse(cr.spec);
  const status = StatusShape.safeParse(cr.status ?? {});
  const base = {
    name: cr.metadata.name,
    uid: cr.metadata.uid,
    generation: cr.metadata.generation,
    resourceVersion: cr.metadata.resourceVersion,
    deleting: cr.metadata.deletionTimestamp !== undefined,
    finalizers: cr.metadata.finalizers ?? [],
    adoptAddonSecrets: parseAdoptAnnotation(cr.metadata.annotations?.[ADOPT_ANNOTATION]),
    status: (status.success ? status.data : {}) as ImagePullSecretStatus,
  };
  if (spec.success) {
    const { server, username, password } = spec.data.docker;
    // spec.tcr credentials come from the token store (issued by the token refresher), not from the CR.
    const credential = !spec.data.tcr && username && password ? { server, username, password } : undefined;
    return { ...base, spec: spec.data, credential };
  }
  const problems = spec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
  return { ...base, invalid: problems, credential: undefined, spec: { docker: { server: '' } } };
}
