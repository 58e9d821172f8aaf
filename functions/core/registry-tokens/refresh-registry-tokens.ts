import { secretNameFor } from '../../../shared/contracts/names.js';
import { throwIfAborted } from '../../../shared/deadline.js';
import { describeError, RetryableError, TerminalError } from '../../../shared/errors.js';
import { withTimeout } from '../../../shared/timeout.js';
import type { CrView, StoredToken } from '../model.js';
import type {
  Action,
  ClusterConnection,
  RegistryTokensDeps,
  RegistryTokensResult,
  SecretReader,
} from '../ports.js';
import { DOCKER_CONFIG_KEY, readDockerConfigPasswords } from '../pull-secret/docker-config.js';
import { scrubMessage } from '../scrub.js';
import { type CredentialCandidate, CredentialChooser } from './credential-sources.js';
import {
  type CredentialRef,
  collectTokenDemand,
  isTokenWorkIdle,
  mergeRetired,
  planIssue,
  planRevocations,
  type StoreRead,
  storeMatches,
  type TokenDemand,
  tokenDescription,
  tokenWorkFingerprint,
} from './plan-registry-tokens.js';
import { CREDENTIALS_NAMESPACE, resolveTencentCredential } from './tencent-credentials.js';

// The fleet's token refresher (scheduled; also run after a spec.tcr CR appears or goes): one
// CreateInstanceToken per registry per rotation, copied into every cluster that needs it, then the CRs using
// it are re-reconciled there; replaced long-term tokens are revoked once nothing uses them. Level-triggered:
// everything it decides comes from what the clusters hold now, so a crash at any line is repaired by the
// next run (at worst a token issued and never stored, which the next run finds by its description and
// revokes).

interface ClusterSnapshot {
  connection: ClusterConnection;
  crs: CrView[];
  stores: Map<string, StoredToken>;
}

/** Reads every cluster at once; one that fails or does not answer in time is set aside, not waited for. */
async function readClusters(
  deps: RegistryTokensDeps,
): Promise<{ snapshots: Map<string, ClusterSnapshot>; unreachable: Record<string, string> }> {
  const snapshots = new Map<string, ClusterSnapshot>();
  const unreachable: Record<string, string> = {};
  await Promise.all(
    deps.clusters.map(async (id) => {
      try {
        const snapshot = await withTimeout(
          (async () => {
            const connection = await deps.connect(id);
            const [crs, tokens] = await Promise.all([
              connection.cluster.listImagePullSecrets(),
              connection.tokens.listTokens(),
            ]);
            return { connection, crs, stores: new Map(tokens.map((t) => [t.key, t])) };
          })(),
          deps.clusterTimeoutMs,
          () => new RetryableError(`cluster ${id}: no answer within ${deps.clusterTimeoutMs} ms`),
        );
        snapshots.set(id, snapshot);
      } catch (error) {
        unreachable[id] = scrubMessage(describeError(error));
      }
    }),
  );
  return { snapshots, unreachable };
}

/**
 * The key sources a token may be issued (and revoked) with, in order: the fleet file's Secrets, the functions'
 * environment when some source names no Secret, then the Secrets CRs name. Each is resolved only when reached.
 */
function candidatesOf(
  deps: RegistryTokensDeps,
  demand: Pick<TokenDemand, 'credentialRefs' | 'fleetRefs' | 'usesEnvironment'>,
  snapshots: Map<string, ClusterSnapshot>,
): CredentialCandidate[] {
  const fromSecret = (ref: CredentialRef): CredentialCandidate => ({
    label: `Secret ${ref.namespace}/${ref.name} in cluster ${ref.cluster}`,
    ref,
    async resolve() {
      const snapshot = snapshots.get(ref.cluster);
      if (!snapshot) throw new RetryableError(`cluster ${ref.cluster} is unreachable`);
      const { credential } = await resolveTencentCredential(
        { namespace: ref.namespace, name: ref.name },
        { secrets: snapshot.connection.secrets, defaultCredential: deps.defaultCredential },
      );
      return credential;
    },
  });
  const environment: CredentialCandidate = {
    label: "the functions' environment",
    async resolve() {
      const { credential } = await resolveTencentCredential(undefined, {
        secrets: nullReader,
        defaultCredential: deps.defaultCredential,
      });
      return credential;
    },
  };
  const refs = demand.credentialRefs;
  return [
    ...refs.slice(0, demand.fleetRefs).map(fromSecret),
    ...(demand.usesEnvironment || refs.length === 0 ? [environment] : []),
    ...refs.slice(demand.fleetRefs).map(fromSecret),
  ];
}

const nullReader: SecretReader = { readSecretData: async () => undefined };

/** How many of a CR's Secrets in one cluster do not carry `token` yet. */
async function countStaleSecrets(
  connection: ClusterConnection,
  crNames: readonly string[],
  token: string,
): Promise<number> {
  let stale = 0;
  for (const name of crNames) {
    for (const secret of await connection.cluster.listSecretsNamed(secretNameFor(name))) {
      if (!secret.ours) continue;
      const passwords = readDockerConfigPasswords(secret.data[DOCKER_CONFIG_KEY] ?? '');
      if (!passwords || passwords.length === 0 || passwords.some((p) => p !== token)) stale++;
    }
  }
  return stale;
}

/**
 * How long a run that found nothing to do lets scheduled ticks skip: the full check still runs at least this
 * often, whatever a missed trigger may have left undone.
 */
export const IDLE_RECHECK_MS = 3_600_000;

async function noteIdle(deps: RegistryTokensDeps, fingerprint: string | undefined): Promise<void> {
  try {
    await deps.reports?.noteIdle?.(fingerprint, IDLE_RECHECK_MS);
  } catch (error) {
    // Only an optimisation: without the note the next tick runs the refresher in full.
    deps.log.debug({ err: describeError(error) }, 'could not note the token refresher idle state');
  }
}

/** Refreshes every registry token of the fleet (see the module comment). */
export async function refreshRegistryTokens(deps: RegistryTokensDeps): Promise<RegistryTokensResult> {
  const now = deps.now().getTime();
  // A run under way is not idle: ticks run the refresher again until a run that found nothing says so.
  await noteIdle(deps, undefined);
  const requested = (await deps.reports?.rotationRequests()) ?? [];
  if (requested.length > 0) deps = { ...deps, force: new Set([...(deps.force ?? []), ...requested]) };
  const actions: Action[] = [];
  const problems: Record<string, string> = {};
  const retryable: string[] = [];
  const { snapshots, unreachable } = await readClusters(deps);
  for (const [id, message] of Object.entries(unreachable)) {
    deps.log.warn({ cluster: id, err: message }, 'cluster unreachable: its tokens catch up on a later run');
    actions.push({ verb: 'skipped', object: `cluster ${id}`, detail: `unreachable: ${message}` });
  }

  const crsByCluster = new Map([...snapshots].map(([id, s]) => [id, s.crs]));
  const { demands, problems: demandProblems } = collectTokenDemand({
    registries: deps.registries,
    crsByCluster,
    credentialsNamespace: CREDENTIALS_NAMESPACE,
  });
  for (const p of demandProblems) problems[p.key] = p.message;

  for (const demand of demands) {
    throwIfAborted(deps.signal, 'registry tokens');
    try {
      await refreshOne(deps, demand, snapshots, now, actions);
      await deps.reports?.report(demand.key, undefined);
    } catch (error) {
      // Out of time is the job's failure, not this registry's: the whole refresh runs again.
      throwIfAborted(deps.signal, 'registry tokens');
      const message = scrubMessage(describeError(error));
      problems[demand.key] = message;
      if (!(error instanceof TerminalError)) retryable.push(demand.key);
      deps.log.error({ tokenKey: demand.key, err: message }, 'token refresh failed');
      await deps.reports?.report(demand.key, message);
    }
  }

  // Tokens nothing asks for any more (their last CR was deleted, or the fleet entry removed): revoke and
  // delete, but only when every cluster was read, since an unreachable one may still have a CR using it.
  const wanted = new Set([...demands.map((d) => d.key), ...demandProblems.map((p) => p.key)]);
  if (Object.keys(unreachable).length === 0) {
    try {
      await retireUnwanted(deps, wanted, snapshots, actions);
    } catch (error) {
      throwIfAborted(deps.signal, 'registry tokens');
      problems['(unused tokens)'] = scrubMessage(describeError(error));
      retryable.push('(unused tokens)');
    }
  }

  const idle = isTokenWorkIdle({
    demands: demands.length,
    problems: Object.keys(problems).length,
    unreachable: Object.keys(unreachable).length,
    storedTokens: [...snapshots.values()].reduce((n, s) => n + s.stores.size, 0),
    rotationRequests: requested.length,
    actions: actions.length,
  });
  if (idle)
    await noteIdle(deps, tokenWorkFingerprint({ clusters: deps.clusters, registries: deps.registries }));

  const result: RegistryTokensResult = {
    actions,
    crs: [...new Set(demands.flatMap((d) => d.crs.map((c) => `${c.cluster}/${c.name}`)))],
    unreachable,
    problems,
  };
  const summary = [
    ...Object.entries(problems).map(([k, m]) => `${k}: ${m}`),
    ...Object.entries(unreachable).map(([c, m]) => `cluster ${c} unreachable (${m})`),
  ];
  // What was done still goes into the audit entry of a failed run (run-job reads `partialResult`).
  if (retryable.length > 0 || Object.keys(unreachable).length > 0) {
    throw Object.assign(new RetryableError(`token refresh incomplete: ${summary.join('; ')}`), {
      partialResult: result,
    });
  }
  if (Object.keys(problems).length > 0) {
    throw Object.assign(new TerminalError(`token refresh failed: ${summary.join('; ')}`), {
      partialResult: result,
    });
  }
  return result;
}

async function refreshOne(
  deps: RegistryTokensDeps,
  demand: TokenDemand,
  snapshots: Map<string, ClusterSnapshot>,
  now: number,
  actions: Action[],
): Promise<void> {
  const stores = new Map<string, StoreRead>();
  for (const id of demand.clusters) {
    const snapshot = snapshots.get(id);
    stores.set(
      id,
      snapshot
        ? { reachable: true, token: snapshot.stores.get(demand.key) }
        : { reachable: false, error: 'unreachable' },
    );
  }
  const force = deps.force?.has(demand.key) === true || deps.force?.has(demand.registryId) === true;
  const decision = planIssue({ demand, stores, now, force });
  let current = decision.current;
  const chooser = new CredentialChooser(
    candidatesOf(deps, demand, snapshots),
    `registry ${demand.registryId}`,
  );
  const target = { registryId: demand.registryId, region: demand.region };

  if (decision.issue) {
    const issued = await chooser.use((credential) =>
      deps.tcr.createInstanceToken({
        ...target,
        credential,
        tokenType: demand.tokenType,
        desc: tokenDescription(deps.fleetName, demand.key),
      }),
    );
    current = {
      key: demand.key,
      registryId: demand.registryId,
      region: demand.region,
      tokenType: demand.tokenType,
      username: issued.username,
      token: issued.token,
      expiresAt: issued.expiresAt,
      issuedAt: now,
      tokenId: issued.tokenId,
      retired: [],
      credentialsRef: chooser.used?.ref,
    };
    actions.push({ verb: 'created', object: `TCR token ${demand.key}`, detail: decision.reason });
    // Done as soon as issued: a retry of this run (a cluster down) must not rotate a second time.
    if (force) await deps.reports?.clearRotationRequests([demand.key, demand.registryId]);
    deps.log.info(
      { tokenKey: demand.key, tokenId: issued.tokenId, expiresAt: issued.expiresAt },
      `issued a new token: ${decision.reason}`,
    );
  }
  if (!current) throw new RetryableError(`token ${demand.key}: ${decision.reason}`);

  const wanted: StoredToken = {
    ...current,
    retired: mergeRetired(current, stores, now),
    // The source it was issued with (revocation uses it when no CR names the registry any more).
    credentialsRef: current.credentialsRef,
    resourceVersion: undefined,
  };
  const failures = await distribute(deps, demand, wanted, snapshots, actions);

  const everyClusterCurrent = failures.length === 0 && demand.clusters.every((c) => snapshots.has(c));
  let staleSecrets = 0;
  const dueSoon = wanted.retired.some((r) => now - r.retiredAt >= deps.revokeGraceMs);
  if (dueSoon && everyClusterCurrent) {
    for (const id of demand.clusters) {
      const names = demand.crs.filter((c) => c.cluster === id).map((c) => c.name);
      staleSecrets += await countStaleSecrets(snapshots.get(id)!.connection, names, wanted.token);
    }
  }
  const revocation = planRevocations({
    retired: wanted.retired,
    now,
    graceMs: deps.revokeGraceMs,
    everyClusterCurrent,
    staleSecrets,
  });
  if (revocation.waiting) deps.log.info({ tokenKey: demand.key }, `revocation waits: ${revocation.waiting}`);
  if (revocation.revoke.length > 0) {
    for (const tokenId of revocation.revoke) {
      const outcome = await chooser.use((credential) =>
        deps.tcr.deleteInstanceToken({ ...target, credential, tokenId }),
      );
      actions.push({ verb: 'deleted', object: `TCR token ${tokenId}`, detail: `replaced (${outcome})` });
    }
    const remaining = wanted.retired.filter((r) => !revocation.revoke.includes(r.tokenId));
    const after = { ...wanted, retired: remaining };
    // The stores now hold `wanted`: bring them to `after` (their fresh resourceVersions are read again).
    for (const id of demand.clusters) {
      const snapshot = snapshots.get(id);
      if (!snapshot) continue;
      const stored = await snapshot.connection.tokens.readToken(demand.key);
      if (!storeMatches(stored, after)) {
        await snapshot.connection.tokens.writeToken({ ...after, resourceVersion: stored?.resourceVersion });
      }
    }
  }

  // A long-term token we issued that no store knows (issued, then a crash before it was stored): revoke.
  if (demand.tokenType === 'longterm' && everyClusterCurrent) {
    const known = new Set([wanted.tokenId, ...wanted.retired.map((r) => r.tokenId)]);
    const description = tokenDescription(deps.fleetName, demand.key);
    const listed = await chooser.use((credential) => deps.tcr.listInstanceTokens({ ...target, credential }));
    for (const t of listed) {
      if (t.desc !== description || known.has(t.tokenId)) continue;
      if (!(now - t.createdAt >= deps.revokeGraceMs)) continue;
      const outcome = await chooser.use((credential) =>
        deps.tcr.deleteInstanceToken({ ...target, credential, tokenId: t.tokenId }),
      );
      actions.push({
        verb: 'deleted',
        object: `TCR token ${t.tokenId}`,
        detail: `issued but never stored (${outcome})`,
      });
    }
  }
  if (failures.length > 0) throw new RetryableError(failures.join('; '));
}

/** Writes the current token where it differs; the CRs using it there are re-reconciled. */
async function distribute(
  deps: RegistryTokensDeps,
  demand: TokenDemand,
  wanted: StoredToken,
  snapshots: Map<string, ClusterSnapshot>,
  actions: Action[],
): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    demand.clusters.map(async (id) => {
      const snapshot = snapshots.get(id);
      if (!snapshot) return;
      const stored = snapshot.stores.get(demand.key);
      if (storeMatches(stored, wanted)) return;
      try {
        await snapshot.connection.tokens.writeToken({ ...wanted, resourceVersion: stored?.resourceVersion });
        actions.push({ verb: stored ? 'updated' : 'created', object: `token Secret ${demand.key} @${id}` });
        if (stored?.token !== wanted.token) {
          const crs = demand.crs.filter((c) => c.cluster === id);
          await deps.queue.enqueue(
            crs.map((c) => ({
              key: { cluster: id, kind: 'imagepullsecret', name: c.name },
              trigger: 'resync',
            })),
          );
        }
      } catch (error) {
        failures.push(`cluster ${id}: ${describeError(error)}`);
      }
    }),
  );
  return failures;
}

/** Revokes (long-term) and deletes every stored token no demand names. */
async function retireUnwanted(
  deps: RegistryTokensDeps,
  wanted: ReadonlySet<string>,
  snapshots: Map<string, ClusterSnapshot>,
  actions: Action[],
): Promise<void> {
  const unwanted = new Map<string, { token: StoredToken; at: { id: string; rv: string }[] }>();
  for (const [id, snapshot] of snapshots) {
    for (const [key, token] of snapshot.stores) {
      if (wanted.has(key)) continue;
      const entry = unwanted.get(key) ?? { token, at: [] };
      entry.at.push({ id, rv: token.resourceVersion ?? '' });
      unwanted.set(key, entry);
    }
  }
  for (const [key, { token, at }] of unwanted) {
    const ids = new Set<string>();
    for (const { id } of at) {
      const t = snapshots.get(id)?.stores.get(key);
      if (t?.tokenType === 'longterm') {
        if (t.tokenId) ids.add(t.tokenId);
        for (const r of t.retired) ids.add(r.tokenId);
      }
    }
    if (ids.size > 0) {
      // The API key it was issued with (recorded in the store; the CR that named it may be gone), else ours.
      const chooser = new CredentialChooser(
        candidatesOf(
          deps,
          {
            credentialRefs: token.credentialsRef ? [token.credentialsRef] : [],
            fleetRefs: token.credentialsRef ? 1 : 0,
            usesEnvironment: true,
          },
          snapshots,
        ),
        `registry ${token.registryId}`,
      );
      for (const tokenId of ids) {
        const outcome = await chooser.use((credential) =>
          deps.tcr.deleteInstanceToken({
            registryId: token.registryId,
            region: token.region,
            credential,
            tokenId,
          }),
        );
        actions.push({
          verb: 'deleted',
          object: `TCR token ${tokenId}`,
          detail: `no longer used (${outcome})`,
        });
      }
    }
    for (const { id, rv } of at) {
      await snapshots.get(id)!.connection.tokens.deleteToken(key, rv);
      actions.push({ verb: 'deleted', object: `token Secret ${key} @${id}`, detail: 'no longer used' });
    }
  }
}
