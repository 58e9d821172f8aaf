import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { mapSdkError } from '../../../../../functions/adapters/tencent-tcr.js';
import type {
  CrView,
  InstanceTokenInfo,
  IssuedToken,
  StoredToken,
} from '../../../../../functions/core/model.js';
import type {
  ClusterConnection,
  RegistryCall,
  RegistryTokensDeps,
  TcrApi,
  TokenReportPort,
  TokenStorePort,
} from '../../../../../functions/core/ports.js';
import {
  collectTokenDemand,
  isTokenWorkIdle,
  mergeRetired,
  planIssue,
  planRevocations,
  type StoreRead,
  type TokenDemand,
  tokenDescription,
  tokenWorkFingerprint,
} from '../../../../../functions/core/registry-tokens/plan-registry-tokens.js';
import { refreshRegistryTokens } from '../../../../../functions/core/registry-tokens/refresh-registry-tokens.js';
import { fromTokenSecret, toTokenSecret } from '../../../../../functions/core/registry-tokens/token-store.js';
import { parseFleet } from '../../../../../shared/contracts/fleet.js';
import { RetryableError, TerminalError } from '../../../../../shared/errors.js';
import { createLogger } from '../../../../../shared/logging.js';
import { crView, FakeCluster, FakeQueue, ourSecretView } from '../../../../support/fake-cluster.js';

const REGISTRY = 'tcr-abc123';
const REGION = 'ap-guangzhou';
const KEY = `${REGISTRY}.longterm`;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function tcrCr(
  name: string,
  o: { tokenType?: 'temp' | 'longterm'; region?: string; deleting?: boolean } = {},
): CrView {
  const base = crView(name, { awaitingCredential: true, deleting: o.deleting });
  return {
    ...base,
    spec: {
      ...base.spec,
      docker: { server: 'demo.tencentcloudcr.com' },
      tcr: { registryId: REGISTRY, region: o.region ?? REGION, tokenType: o.tokenType ?? 'longterm' },
    },
  };
}

function stored(o: Partial<StoredToken> = {}): StoredToken {
  return {
    key: KEY,
    registryId: REGISTRY,
    region: REGION,
    tokenType: 'longterm',
    username: '100000000001',
    token: 'tok-1',
    expiresAt: 0,
    issuedAt: T0,
    tokenId: 'tk-1',
    retired: [],
    ...o,
  };
}

function demand(o: Partial<TokenDemand> = {}): TokenDemand {
  return {
    key: KEY,
    registryId: REGISTRY,
    region: REGION,
    tokenType: 'longterm',
    refreshBeforeSeconds: 86_400,
    clusters: ['a', 'b'],
    credentialRefs: [],
    fleetRefs: 0,
    usesEnvironment: true,
    crs: [],
    ...o,
  };
}

describe('parseFleet', () => {
  it('accepts kubeconfig and TKE clusters and expands nothing it was not asked to', () => {
    const fleet = parseFleet(`
name: prod
clusters:
  - id: gz-1
    kubeconfig: { context: gz-1 }
  - id: sh-1
    tke: { clusterId: cls-abc123, region: ap-shanghai }
registries:
  - registryId: tcr-abc123
    region: ap-guangzhou
    clusters: ["*"]
`);
    expect(fleet.clusters[1]).toEqual({
      id: 'sh-1',
      tke: { clusterId: 'cls-abc123', region: 'ap-shanghai', extranet: false },
    });
    expect(fleet.registries[0]?.tokenType).toBe('longterm');
  });

  it.each([
    [
      'an unknown cluster in a registry entry, by name',
      'name: p\nclusters: [{id: a, kubeconfig: {context: a}}]\nregistries: [{registryId: tcr-x1, region: ap-guangzhou, clusters: [b]}]',
      'registries[0] (tcr-x1).clusters[0]: unknown cluster "b" (the fleet has: a)',
    ],
    [
      'a cluster with both kubeconfig and tke',
      'name: p\nclusters: [{id: a, kubeconfig: {context: a}, tke: {clusterId: cls-1, region: ap-guangzhou}}]',
      'clusters[0] (a): needs exactly one of kubeconfig or tke',
    ],
    [
      'a bad TKE cluster id',
      'name: p\nclusters: [{id: a, tke: {clusterId: "c-1", region: ap-guangzhou}}]',
      'clusters[0] (a).tke.clusterId: must be a TKE cluster id such as cls-abc123xy',
    ],
    [
      'a duplicate cluster id',
      'name: p\nclusters: [{id: a, kubeconfig: {context: a}}, {id: a, kubeconfig: {context: b}}]',
      'clusters[1] (a).id: duplicate cluster id "a"',
    ],
    [
      'the reserved id',
      'name: p\nclusters: [{id: fleet, kubeconfig: {context: a}}]',
      'clusters[0] (fleet).id: "fleet" is reserved for fleet-wide jobs',
    ],
    [
      'an unknown field',
      'name: p\nclusters: [{id: a, kubeconfig: {context: a}, kubeconfg: {}}]',
      'clusters[0] (a): Unrecognized key: "kubeconfg"',
    ],
    ['not YAML', 'name: [', 'is not valid YAML'],
  ])('rejects %s with a message naming the entry', (_what, text, message) => {
    expect(() => parseFleet(text, 'fleet.yaml')).toThrow(message);
  });
});

describe('token Secret round trip', () => {
  it('keeps every field, and the token only in data', () => {
    const token = stored({
      retired: [{ tokenId: 'tk-0', retiredAt: T0 - 1000 }],
      credentialsRef: { cluster: 'a', namespace: 'tcr-assistant-system', name: 'api-key' },
      expiresAt: T0 + 3_600_000,
    });
    const shape = toTokenSecret(token);
    expect(shape.name).toBe(`tcr-token.${KEY}`);
    expect(JSON.stringify({ ...shape.labels, ...shape.annotations })).not.toContain('tok-1');
    const back = fromTokenSecret({
      labels: shape.labels,
      annotations: shape.annotations,
      data: shape.stringData,
      resourceVersion: '7',
    });
    expect(back).toEqual({ ...token, resourceVersion: '7' });
  });

  it('ignores a Secret without our label', () => {
    const shape = toTokenSecret(stored());
    expect(
      fromTokenSecret({
        labels: {},
        annotations: shape.annotations,
        data: shape.stringData,
        resourceVersion: '1',
      }),
    ).toBeUndefined();
  });
});

describe('collectTokenDemand', () => {
  it('merges the fleet entry and CRs naming one registry into one token for all their clusters', () => {
    const { demands, problems } = collectTokenDemand({
      registries: [{ registryId: REGISTRY, region: REGION, tokenType: 'longterm', clusters: ['a'] }],
      crsByCluster: new Map([
        ['b', [tcrCr('one'), tcrCr('gone', { deleting: true })]],
        ['c', [tcrCr('two'), crView('plain')]],
      ]),
      credentialsNamespace: 'tcr-assistant-system',
    });
    expect(problems).toEqual([]);
    expect(demands).toHaveLength(1);
    expect(demands[0]).toMatchObject({
      key: KEY,
      clusters: ['a', 'b', 'c'],
      crs: [
        { cluster: 'b', name: 'one' },
        { cluster: 'c', name: 'two' },
      ],
    });
  });

  it('reports one registry id named in two regions instead of guessing', () => {
    const { demands, problems } = collectTokenDemand({
      registries: [],
      crsByCluster: new Map([['a', [tcrCr('x'), tcrCr('y', { region: 'ap-shanghai' })]]]),
      credentialsNamespace: 'tcr-assistant-system',
    });
    expect(demands).toEqual([]);
    expect(problems[0]?.message).toContain(
      'ImagePullSecret y in cluster a names registry tcr-abc123 in ap-shanghai',
    );
  });
});

describe('planIssue', () => {
  const read = (token?: StoredToken): StoreRead => ({ reachable: true, token });
  it.each([
    ['nothing stored', new Map([['a', read()]]), T0, false, true, 'no token stored yet'],
    [
      'a current long-term token that never expires',
      new Map([['a', read(stored())]]),
      T0 + 1e9,
      false,
      false,
      'current',
    ],
    ['a forced rotation', new Map([['a', read(stored())]]), T0, true, true, 'rotation requested'],
    [
      'a temp token inside its refresh margin',
      new Map([['a', read(stored({ expiresAt: T0 + 3_600_000 }))]]),
      T0 + 3_600_000 - 60_000,
      false,
      true,
      'token expires at',
    ],
    [
      'a temp token outside its refresh margin',
      new Map([['a', read(stored({ expiresAt: T0 + 3_600_000 }))]]),
      T0 + 1000,
      false,
      false,
      'current',
    ],
    [
      'no reachable cluster',
      new Map([['a', { reachable: false, error: 'x' } as StoreRead]]),
      T0,
      false,
      false,
      'no cluster reachable',
    ],
  ])('%s', (_what, stores, now, force, issue, reason) => {
    const d = planIssue({ demand: demand({ refreshBeforeSeconds: 600 }), stores, now, force });
    expect(d.issue).toBe(issue);
    expect(d.reason).toContain(reason);
  });

  it('caps the margin at half the lifetime, so a short-lived token does not make every run issue one', () => {
    const short = stored({ expiresAt: T0 + 60_000 });
    const d = planIssue({
      demand: demand({ refreshBeforeSeconds: 86_400 }),
      stores: new Map([['a', read(short)]]),
      now: T0 + 10_000,
      force: false,
    });
    expect(d.issue).toBe(false);
  });

  it('takes the newest token of any cluster as current (an older copy elsewhere is no reason to issue)', () => {
    const d = planIssue({
      demand: demand(),
      stores: new Map([
        ['a', read(stored({ token: 'old', tokenId: 'tk-0', issuedAt: T0 - 5000 }))],
        ['b', read(stored())],
      ]),
      now: T0,
      force: false,
    });
    expect(d).toMatchObject({ issue: false, current: { token: 'tok-1' } });
  });
});

describe('mergeRetired and planRevocations', () => {
  it('remembers every replaced long-term token once, with its earliest time', () => {
    const current = stored({
      token: 'tok-2',
      tokenId: 'tk-2',
      retired: [{ tokenId: 'tk-0', retiredAt: T0 - 50 }],
    });
    const retired = mergeRetired(
      current,
      new Map<string, StoreRead>([
        ['a', { reachable: true, token: stored() }],
        ['b', { reachable: true, token: stored({ retired: [{ tokenId: 'tk-0', retiredAt: T0 - 100 }] }) }],
      ]),
      T0,
    );
    expect(retired).toEqual([
      { tokenId: 'tk-0', retiredAt: T0 - 100 },
      { tokenId: 'tk-1', retiredAt: T0 },
    ]);
  });

  it.each([
    ['inside the grace period', T0 + 1000, true, 0, [], 'grace period'],
    ['a cluster behind', T0 + 700_000, false, 0, [], 'has not received'],
    ['Secrets still old', T0 + 700_000, true, 3, [], '3 Secret(s)'],
    ['everything current', T0 + 700_000, true, 0, ['tk-1'], undefined],
  ])('%s', (_what, now, everyClusterCurrent, staleSecrets, revoke, waiting) => {
    const plan = planRevocations({
      retired: [{ tokenId: 'tk-1', retiredAt: T0 }],
      now,
      graceMs: 600_000,
      everyClusterCurrent,
      staleSecrets,
    });
    expect(plan.revoke).toEqual(revoke);
    if (waiting) expect(plan.waiting).toContain(waiting);
    else expect(plan.waiting).toBeUndefined();
  });
});

// ---- orchestration with in-memory fakes of our ports -------------------------------------------------

class FakeTokenStore implements TokenStorePort {
  readonly tokens = new Map<string, StoredToken>();
  writes = 0;
  private rv = 0;
  async readToken(key: string) {
    const t = this.tokens.get(key);
    return t && structuredClone(t);
  }
  async listTokens() {
    return [...this.tokens.values()].map((t) => structuredClone(t));
  }
  async writeToken(token: StoredToken) {
    const existing = this.tokens.get(token.key);
    if (existing && existing.resourceVersion !== token.resourceVersion) throw new RetryableError('HTTP 409');
    this.writes++;
    this.tokens.set(token.key, { ...structuredClone(token), resourceVersion: String(++this.rv) });
  }
  async deleteToken(key: string) {
    return this.tokens.delete(key) ? ('deleted' as const) : ('gone' as const);
  }
}

class FakeTokenApi implements TcrApi {
  readonly live = new Map<string, { desc: string; createdAt: number }>();
  creates = 0;
  deletes: string[] = [];
  faults: Error[] = [];
  private seq = 0;
  constructor(private readonly clock: () => number) {}
  async createInstanceToken(
    input: RegistryCall & { tokenType: 'temp' | 'longterm'; desc: string },
  ): Promise<IssuedToken> {
    this.creates++;
    const fault = this.faults.shift();
    if (fault) throw fault;
    const n = ++this.seq;
    if (input.tokenType === 'longterm')
      this.live.set(`tk-${n}`, { desc: input.desc, createdAt: this.clock() });
    return {
      username: '100000000001',
      token: `secret-token-${n}`,
      expiresAt: input.tokenType === 'temp' ? this.clock() + 3_600_000 : 0,
      tokenId: input.tokenType === 'longterm' ? `tk-${n}` : undefined,
    };
  }
  async deleteInstanceToken(input: RegistryCall & { tokenId: string }) {
    this.deletes.push(input.tokenId);
    return this.live.delete(input.tokenId) ? ('deleted' as const) : ('gone' as const);
  }
  async listInstanceTokens(): Promise<InstanceTokenInfo[]> {
    return [...this.live].map(([tokenId, t]) => ({
      tokenId,
      desc: t.desc,
      enabled: true,
      createdAt: t.createdAt,
    }));
  }
  async describeInternalEndpoints() {
    return [];
  }
}

class FakeReports implements TokenReportPort {
  readonly last = new Map<string, string | undefined>();
  requests = new Set<string>();
  async report(key: string, error: string | undefined) {
    this.last.set(key, error);
  }
  async rotationRequests() {
    return [...this.requests];
  }
  async clearRotationRequests(targets: readonly string[]) {
    for (const t of targets) this.requests.delete(t);
  }
  idle: string | undefined = 'stale note from an earlier run';
  async noteIdle(fingerprint: string | undefined) {
    this.idle = fingerprint;
  }
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

function fleetFixture(ids = ['a', 'b', 'c']) {
  let now = T0;
  const clusters = new Map(
    ids.map((id) => [id, { cluster: new FakeCluster(id), tokens: new FakeTokenStore() }]),
  );
  for (const [id, c] of clusters) c.cluster.addCr(tcrCr(`app-${id}`));
  const down = new Set<string>();
  const api = new FakeTokenApi(() => now);
  const queue = new FakeQueue();
  const reports = new FakeReports();
  const logs = new Capture();
  const deps = (o: Partial<RegistryTokensDeps> = {}): RegistryTokensDeps => ({
    fleetName: 'prod',
    clusters: ids,
    registries: [],
    connect: async (id): Promise<ClusterConnection> => {
      if (down.has(id)) throw new RetryableError(`connect ECONNREFUSED (cluster ${id})`);
      const c = clusters.get(id)!;
      return { cluster: c.cluster, tokens: c.tokens, secrets: { readSecretData: async () => undefined } };
    },
    tcr: api,
    defaultCredential: { secretId: 'AKIDtest', secretKey: 'very-secret-key' },
    queue,
    reports,
    now: () => new Date(now),
    revokeGraceMs: 600_000,
    clusterTimeoutMs: 1000,
    log: createLogger('functions', 'debug', logs),
    ...o,
  });
  return {
    clusters,
    down,
    api,
    queue,
    reports,
    logs,
    deps,
    advance: (ms: number) => {
      now += ms;
    },
    /** Our Secrets as reconcile would write them with the stored token. */
    syncSecrets(id: string) {
      const c = clusters.get(id)!;
      const t = c.tokens.tokens.get(KEY)!;
      for (const cr of c.cluster.crs.values()) {
        const withToken = {
          ...cr,
          credential: { server: cr.spec.docker.server, username: t.username, password: t.token },
        };
        c.cluster.secrets.clear();
        c.cluster.addSecret(ourSecretView(withToken, 'ns-1'));
      }
    },
  };
}

describe('refreshRegistryTokens', () => {
  it('notes "nothing to do" only when no token is asked for or stored anywhere, and forgets it once there is', async () => {
    const fx = fleetFixture();
    const fingerprint = tokenWorkFingerprint({ clusters: ['a', 'b', 'c'], registries: [] });
    // CRs with spec.tcr: work (a token issued), not idle.
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.creates).toBe(1);
    expect(fx.reports.idle).toBeUndefined();
    // The CRs are gone but their token is still stored: it must be retired and revoked, so not idle either.
    for (const c of fx.clusters.values()) c.cluster.crs.clear();
    await refreshRegistryTokens(fx.deps()).catch(() => {});
    expect(fx.reports.idle).toBeUndefined();
    // Once no store is left: a scheduled tick has nothing to find.
    for (const c of fx.clusters.values()) c.tokens.tokens.clear();
    await refreshRegistryTokens(fx.deps());
    expect(fx.reports.idle).toBe(fingerprint);
    // A fleet with another cluster or registry is another question.
    expect(tokenWorkFingerprint({ clusters: ['a', 'b', 'c', 'd'], registries: [] })).not.toBe(fingerprint);
    // A run that starts forgets the note (a run that then fails must not leave ticks skipping).
    fx.clusters.get('a')!.cluster.addCr(tcrCr('app-a'));
    fx.down.add('b');
    await refreshRegistryTokens(fx.deps()).catch(() => {});
    expect(fx.reports.idle).toBeUndefined();
  });

  it.each([
    [{ demands: 0, problems: 0, unreachable: 0, storedTokens: 0, rotationRequests: 0, actions: 0 }, true],
    [{ demands: 1, problems: 0, unreachable: 0, storedTokens: 0, rotationRequests: 0, actions: 0 }, false],
    [{ demands: 0, problems: 0, unreachable: 1, storedTokens: 0, rotationRequests: 0, actions: 0 }, false],
    [{ demands: 0, problems: 0, unreachable: 0, storedTokens: 2, rotationRequests: 0, actions: 0 }, false],
    [{ demands: 0, problems: 1, unreachable: 0, storedTokens: 0, rotationRequests: 0, actions: 0 }, false],
    [{ demands: 0, problems: 0, unreachable: 0, storedTokens: 0, rotationRequests: 1, actions: 0 }, false],
    [{ demands: 0, problems: 0, unreachable: 0, storedTokens: 0, rotationRequests: 0, actions: 1 }, false],
  ])('isTokenWorkIdle(%o) is %s', (run, idle) => {
    expect(isTokenWorkIdle(run)).toBe(idle);
  });

  it('issues one token for the fleet, stores it in every cluster and re-reconciles the CRs there', async () => {
    const fx = fleetFixture();
    const result = await refreshRegistryTokens(fx.deps());
    expect(fx.api.creates).toBe(1);
    for (const c of fx.clusters.values()) expect(c.tokens.tokens.get(KEY)?.token).toBe('secret-token-1');
    expect(fx.queue.items.map((i) => `${i.key.cluster}/${i.key.name}`).sort()).toEqual([
      'a/app-a',
      'b/app-b',
      'c/app-c',
    ]);
    expect(result.actions.map((a) => a.verb)).toContain('created');

    // Converged: a second run costs no API call and no write.
    const writes = [...fx.clusters.values()].map((c) => c.tokens.writes);
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.creates).toBe(1);
    expect([...fx.clusters.values()].map((c) => c.tokens.writes)).toEqual(writes);
  });

  it('rotates once while a cluster is down, reports it, and catches it up without another token', async () => {
    const fx = fleetFixture();
    await refreshRegistryTokens(fx.deps());
    fx.down.add('c');
    fx.reports.requests.add(REGISTRY);
    const error = await refreshRegistryTokens(fx.deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toContain('cluster c unreachable');
    expect(
      (error as { partialResult: { actions: { verb: string }[] } }).partialResult.actions.map((a) => a.verb),
    ).toContain('created');
    expect(fx.api.creates).toBe(2);
    // A retry while c is still down issues nothing more.
    await refreshRegistryTokens(fx.deps()).catch(() => {});
    expect(fx.api.creates).toBe(2);
    fx.down.delete('c');
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.creates).toBe(2);
    expect(fx.clusters.get('c')!.tokens.tokens.get(KEY)?.token).toBe('secret-token-2');
  });

  it('revokes the replaced long-term token only after the grace period and once every Secret has the new one', async () => {
    const fx = fleetFixture();
    await refreshRegistryTokens(fx.deps());
    fx.reports.requests.add(KEY);
    await refreshRegistryTokens(fx.deps());
    expect(fx.clusters.get('a')!.tokens.tokens.get(KEY)?.retired).toEqual([
      { tokenId: 'tk-1', retiredAt: T0 },
    ]);
    fx.advance(700_000);
    // Secrets still carry the first token: revocation waits.
    for (const id of ['a', 'b', 'c']) {
      const c = fx.clusters.get(id)!;
      const cr = [...c.cluster.crs.values()][0]!;
      c.cluster.addSecret(
        ourSecretView(
          {
            ...cr,
            credential: { server: 'demo.tencentcloudcr.com', username: 'u', password: 'secret-token-1' },
          },
          'ns-1',
        ),
      );
    }
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.deletes).toEqual([]);
    for (const id of ['a', 'b', 'c']) fx.syncSecrets(id);
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.deletes).toEqual(['tk-1']);
    for (const c of fx.clusters.values()) expect(c.tokens.tokens.get(KEY)?.retired).toEqual([]);
  });

  it('revokes a long-term token it issued but never stored (crash between issue and store)', async () => {
    const fx = fleetFixture();
    fx.api.live.set('tk-orphan', { desc: tokenDescription('prod', KEY), createdAt: T0 });
    fx.api.live.set('tk-theirs', { desc: 'made by hand', createdAt: T0 });
    await refreshRegistryTokens(fx.deps());
    fx.advance(700_000);
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.deletes).toEqual(['tk-orphan']);
  });

  it('revokes and deletes a token nothing uses any more, but not while a cluster is unreachable', async () => {
    const fx = fleetFixture(['a', 'b']);
    await refreshRegistryTokens(fx.deps());
    for (const c of fx.clusters.values()) c.cluster.crs.clear();
    fx.down.add('b');
    await refreshRegistryTokens(fx.deps()).catch(() => {});
    expect(fx.api.deletes).toEqual([]);
    fx.down.delete('b');
    await refreshRegistryTokens(fx.deps());
    expect(fx.api.deletes).toEqual(['tk-1']);
    for (const c of fx.clusters.values()) expect(c.tokens.tokens.size).toBe(0);
  });

  it('keeps going for other registries when one fails terminally, and names it', async () => {
    const fx = fleetFixture(['a']);
    fx.api.faults.push(
      new TerminalError(
        'CreateInstanceToken (longterm) of registry tcr-abc123 in ap-guangzhou: ResourceNotFound',
      ),
    );
    const error = await refreshRegistryTokens(
      fx.deps({
        registries: [{ registryId: 'tcr-other1', region: REGION, tokenType: 'temp', clusters: ['a'] }],
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toContain('tcr-abc123.longterm: CreateInstanceToken');
    expect(fx.clusters.get('a')!.tokens.tokens.get('tcr-other1.temp')).toBeDefined();
    expect(fx.reports.last.get(KEY)).toContain('ResourceNotFound');
  });

  it('never logs a token or the API key', async () => {
    const fx = fleetFixture();
    await refreshRegistryTokens(fx.deps());
    fx.reports.requests.add(KEY);
    await refreshRegistryTokens(fx.deps());
    expect(fx.logs.text).not.toMatch(/secret-token-|very-secret-key/);
    // ...while still naming which token (a field called `token` would be censored by the logger).
    expect(fx.logs.text).toContain(`"tokenKey":"${KEY}"`);
    expect(JSON.stringify(fx.queue.items)).not.toMatch(/secret-token-/);
  });
});

describe('mapSdkError', () => {
  it('classifies throttling as retryable and a bad key as terminal, never echoing the key', () => {
    const throttled = mapSdkError(
      { code: 'RequestLimitExceeded', message: 'slow down' },
      'CreateInstanceToken',
      'k3y',
    );
    expect(throttled).toBeInstanceOf(RetryableError);
    const bad = mapSdkError(
      { code: 'AuthFailure.SignatureFailure', message: 'sig k3y' },
      'CreateInstanceToken',
      'k3y',
    );
    expect(bad).toBeInstanceOf(TerminalError);
    expect(bad.message).not.toContain('k3y');
  });
});
