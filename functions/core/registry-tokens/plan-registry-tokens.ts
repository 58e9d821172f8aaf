import type { CrView, RetiredToken, StoredToken, TokenType } from '../model.js';
import { tokenKeyOf } from './token-store.js';

// Pure planning of the fleet's TCR tokens: what each registry needs (from the fleet file and the CRs found in
// each cluster), whether a new token must be issued, which clusters need the current one written, and which
// retired long-term tokens may be revoked. No I/O; the clock is an argument.

export const DEFAULT_REFRESH_BEFORE_SECONDS: Record<TokenType, number> = {
  // A temp token lasts one hour: a new one at 40 minutes leaves 20 minutes for every cluster to get it.
  temp: 20 * 60,
  longterm: 24 * 3600,
};

/** Where a registry's API key comes from: a Secret in a cluster's tcr-assistant-system, or the environment. */
export interface CredentialRef {
  cluster: string;
  namespace: string;
  name: string;
}

export interface TokenDemand {
  key: string;
  registryId: string;
  region: string;
  tokenType: TokenType;
  refreshBeforeSeconds: number;
  rotateAfterSeconds?: number | undefined;
  /** Clusters the token goes to (sorted). */
  clusters: string[];
  /** API-key Secrets named for it: the fleet file's first (`fleetRefs` of them), then CRs' by cluster and name. */
  credentialRefs: CredentialRef[];
  /** How many leading `credentialRefs` come from the fleet file: tried before the environment. */
  fleetRefs: number;
  /** A source that names no Secret (a fleet entry or CR without one): the functions' own key is a candidate. */
  usesEnvironment: boolean;
  /** CRs using the token, to re-reconcile where it changed. */
  crs: { cluster: string; name: string }[];
}

export interface FleetRegistryInput {
  registryId: string;
  region: string;
  tokenType: TokenType;
  refreshBeforeSeconds?: number | undefined;
  rotateAfterSeconds?: number | undefined;
  clusters: string[];
  credentialsSecretRef?: { cluster: string; name: string } | undefined;
}

export interface DemandProblem {
  key: string;
  message: string;
}

/**
 * What each token is needed for: every fleet registry entry, plus every live spec.tcr CR in a cluster we
 * could read. Two sources naming one registry and type must agree on the region (else the registry is
 * reported, not guessed); the earliest refresh wins.
 */
export function collectTokenDemand(input: {
  registries: readonly FleetRegistryInput[];
  crsByCluster: ReadonlyMap<string, readonly CrView[]>;
  credentialsNamespace: string;
}): { demands: TokenDemand[]; problems: DemandProblem[] } {
  const demands = new Map<string, TokenDemand>();
  const problems: DemandProblem[] = [];
  const bad = new Set<string>();
  const add = (
    source: string,
    spec: Omit<FleetRegistryInput, 'clusters' | 'credentialsSecretRef'>,
    clusters: string[],
    ref: CredentialRef | undefined,
    cr?: { cluster: string; name: string },
  ) => {
    const key = tokenKeyOf(spec.registryId, spec.tokenType);
    const refresh = spec.refreshBeforeSeconds ?? DEFAULT_REFRESH_BEFORE_SECONDS[spec.tokenType];
    let d = demands.get(key);
    if (!d) {
      d = {
        key,
        registryId: spec.registryId,
        region: spec.region,
        tokenType: spec.tokenType,
        refreshBeforeSeconds: refresh,
        rotateAfterSeconds: spec.rotateAfterSeconds,
        clusters: [],
        credentialRefs: [],
        fleetRefs: 0,
        usesEnvironment: false,
        crs: [],
      };
      demands.set(key, d);
    } else if (d.region !== spec.region) {
      if (!bad.has(key)) {
        problems.push({
          key,
          message: `${source} names registry ${spec.registryId} in ${spec.region}, but it is also named in ${d.region}: one registry id has one region`,
        });
      }
      bad.add(key);
      return;
    }
    d.refreshBeforeSeconds = Math.min(d.refreshBeforeSeconds, refresh);
    if (spec.rotateAfterSeconds !== undefined) {
      d.rotateAfterSeconds = Math.min(
        d.rotateAfterSeconds ?? Number.POSITIVE_INFINITY,
        spec.rotateAfterSeconds,
      );
    }
    for (const c of clusters) if (!d.clusters.includes(c)) d.clusters.push(c);
    if (!ref) d.usesEnvironment = true;
    else if (
      !d.credentialRefs.some(
        (r) => r.cluster === ref.cluster && r.namespace === ref.namespace && r.name === ref.name,
      )
    ) {
      d.credentialRefs.push(ref);
      if (!cr) d.fleetRefs += 1;
    }
    if (cr) d.crs.push(cr);
  };

  for (const r of input.registries) {
    const ref = r.credentialsSecretRef && {
      cluster: r.credentialsSecretRef.cluster,
      namespace: input.credentialsNamespace,
      name: r.credentialsSecretRef.name,
    };
    add(`the fleet file's entry ${r.registryId}`, r, r.clusters, ref);
  }
  const clusterIds = [...input.crsByCluster.keys()].sort();
  for (const cluster of clusterIds) {
    const crs = [...(input.crsByCluster.get(cluster) ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const cr of crs) {
      const tcr = cr.spec.tcr;
      if (!tcr || cr.invalid || cr.deleting) continue;
      const ref = tcr.credentialsSecretRef && { cluster, ...tcr.credentialsSecretRef };
      add(`ImagePullSecret ${cr.name} in cluster ${cluster}`, tcr, [cluster], ref, {
        cluster,
        name: cr.name,
      });
    }
  }
  for (const key of bad) demands.delete(key);
  const out = [...demands.values()].map((d) => ({ ...d, clusters: [...d.clusters].sort() }));
  return { demands: out.sort((a, b) => (a.key < b.key ? -1 : 1)), problems };
}

/** What one cluster's store holds for a token key, or that the cluster could not be read. */
export type StoreRead =
  | { reachable: true; token: StoredToken | undefined }
  | { reachable: false; error: string };

export interface IssueDecision {
  issue: boolean;
  /** Why (for the audit): `none stored`, `expires at …`, `rotation forced`, … */
  reason: string;
  /** The newest token found in any reachable cluster. */
  current: StoredToken | undefined;
}

/**
 * Whether a new token is needed. The newest stored token (by issue time) is the current one; another cluster
 * holding an older one just gets the newer copy, it is no reason to issue. The refresh margin never exceeds
 * half the token's lifetime, so a short-lived token cannot make every run issue another.
 */
export function planIssue(input: {
  demand: TokenDemand;
  stores: ReadonlyMap<string, StoreRead>;
  now: number;
  force: boolean;
}): IssueDecision {
  let current: StoredToken | undefined;
  for (const read of input.stores.values()) {
    if (!read.reachable || !read.token) continue;
    if (read.token.region !== input.demand.region) continue;
    if (!current || read.token.issuedAt > current.issuedAt) current = read.token;
  }
  if (!current) {
    const reachable = [...input.stores.values()].some((r) => r.reachable);
    return reachable
      ? { issue: true, reason: 'no token stored yet', current }
      : { issue: false, reason: 'no cluster reachable to store a token in', current };
  }
  if (input.force) return { issue: true, reason: 'rotation requested', current };
  if (current.expiresAt !== 0) {
    const lifetime = current.expiresAt - current.issuedAt;
    const margin = Math.min(input.demand.refreshBeforeSeconds * 1000, Math.max(0, lifetime / 2));
    if (input.now >= current.expiresAt - margin) {
      return {
        issue: true,
        reason: `token expires at ${new Date(current.expiresAt).toISOString()} (refresh ${Math.round(margin / 1000)} s before)`,
        current,
      };
    }
  }
  const rotateAfter = input.demand.rotateAfterSeconds;
  if (rotateAfter !== undefined && input.now >= current.issuedAt + rotateAfter * 1000) {
    return { issue: true, reason: `token older than rotateAfterSeconds ${rotateAfter}`, current };
  }
  return { issue: false, reason: 'current', current };
}

/**
 * The long-term tokens that the current one replaces: every retired id any store remembers, plus every other
 * long-term token id a store still holds (an earlier current token, or a split brain), earliest time kept.
 */
export function mergeRetired(
  current: StoredToken,
  stores: ReadonlyMap<string, StoreRead>,
  now: number,
): RetiredToken[] {
  const byId = new Map<string, number>();
  const note = (tokenId: string | undefined, at: number) => {
    if (!tokenId || tokenId === current.tokenId) return;
    byId.set(tokenId, Math.min(byId.get(tokenId) ?? at, at));
  };
  for (const r of current.retired) note(r.tokenId, r.retiredAt);
  for (const read of stores.values()) {
    if (!read.reachable || !read.token) continue;
    for (const r of read.token.retired) note(r.tokenId, r.retiredAt);
    if (read.token.token !== current.token && read.token.tokenType === 'longterm')
      note(read.token.tokenId, now);
  }
  return [...byId.entries()]
    .map(([tokenId, retiredAt]) => ({ tokenId, retiredAt }))
    .sort((a, b) => a.retiredAt - b.retiredAt || (a.tokenId < b.tokenId ? -1 : 1));
}

/** Whether a store already holds exactly this token record (then writing it costs nothing: skip). */
export function storeMatches(stored: StoredToken | undefined, wanted: StoredToken): boolean {
  if (!stored) return false;
  return (
    stored.token === wanted.token &&
    stored.username === wanted.username &&
    stored.region === wanted.region &&
    stored.expiresAt === wanted.expiresAt &&
    stored.issuedAt === wanted.issuedAt &&
    stored.tokenId === wanted.tokenId &&
    JSON.stringify(stored.credentialsRef) === JSON.stringify(wanted.credentialsRef) &&
    JSON.stringify(stored.retired) === JSON.stringify(wanted.retired)
  );
}

/**
 * Retired tokens that may be revoked now: past the grace period, and only once every cluster of the demand
 * was reached, stores the current token, and has no Secret of a CR still carrying an older one. Until then
 * revoking could cut off a cluster that has not caught up.
 */
export function planRevocations(input: {
  retired: readonly RetiredToken[];
  now: number;
  graceMs: number;
  everyClusterCurrent: boolean;
  staleSecrets: number;
}): { revoke: string[]; waiting: string | undefined } {
  const due = input.retired.filter((r) => input.now - r.retiredAt >= input.graceMs);
  if (due.length === 0) {
    return {
      revoke: [],
      waiting: input.retired.length > 0 ? 'grace period of the replaced token not over' : undefined,
    };
  }
  if (!input.everyClusterCurrent) {
    return { revoke: [], waiting: 'a cluster has not received the current token yet' };
  }
  if (input.staleSecrets > 0) {
    return { revoke: [], waiting: `${input.staleSecrets} Secret(s) still carry an older token` };
  }
  return { revoke: due.map((r) => r.tokenId), waiting: undefined };
}

/** Our description of the long-term tokens we issue, to find ones that were issued but never stored. */
export function tokenDescription(fleetName: string, key: string): string {
  return `tcr-assistant ${fleetName} ${key}`;
}

/**
 * What a refresher run's "nothing to do" is about: the fleet's clusters and registries. A run that finds no
 * demand and no stored token anywhere holds only for the same fleet (a fleet file with a new registry is work).
 */
export function tokenWorkFingerprint(input: {
  clusters: readonly string[];
  registries: readonly FleetRegistryInput[];
}): string {
  return JSON.stringify([[...input.clusters].sort(), input.registries]);
}

/**
 * Whether a run found the fleet with nothing to keep: no CR or fleet entry asks for a token, no token is stored
 * in any cluster (so none to refresh, retire or revoke), every cluster answered, no rotation was asked for, and
 * the run did nothing. Until something asks (a spec.tcr CR's job enqueues the refresher; `tokens`, `rotate`),
 * a scheduled tick has nothing to find.
 */
export function isTokenWorkIdle(run: {
  demands: number;
  problems: number;
  unreachable: number;
  storedTokens: number;
  rotationRequests: number;
  actions: number;
}): boolean {
  return Object.values(run).every((n) => n === 0);
}
