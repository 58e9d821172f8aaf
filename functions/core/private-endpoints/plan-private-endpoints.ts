import {
  describeDomainProblem,
  describeIpProblem,
  formatUpdaterConfigData,
  type HostEntry,
} from '../../../shared/contracts/updater-config.js';
import type { CrView, InternalEndpoint } from '../model.js';

// Pure planning of the private-endpoint map: from the CRs that enable spec.privateNetwork and their
// registries' endpoints to the `data` of ConfigMap tcr-assistant-system/updater-config, which the
// hosts-updater DaemonSet writes into every node's /etc/hosts (docs/adr-004-hosts-updater.md).

/** What looking up one registry's endpoints gave. */
export type EndpointLookup =
  | { ok: true; endpoints: readonly InternalEndpoint[] }
  | { ok: false; reason: string };

export interface PrivateEndpointsInput {
  crs: readonly CrView[];
  /** By registryKeyOf(registryId, region); a registry that is missing counts as a failed lookup. */
  lookups: ReadonlyMap<string, EndpointLookup>;
  /**
   * The entries published now. A domain whose lookup failed keeps its entry from here: one unreachable
   * API must not remove a working mapping from every node.
   */
  previous: readonly HostEntry[];
}

export interface SkippedCr {
  cr: string;
  reason: string;
}

export interface IgnoredEndpoint {
  registry: string;
  vpcId: string;
  reason: string;
}

export interface PrivateEndpointsPlan {
  enabled: boolean;
  /** One entry per domain, sorted by domain. */
  hosts: HostEntry[];
  /** The ConfigMap `data` (UpdaterConfigDataSchema's shape, via the contract's own formatter). */
  data: Record<string, string>;
  /** CRs that enable spec.privateNetwork, sorted. */
  crs: string[];
  /** Enabled CRs that got no entry from this run's lookups, with the reason (kept ones included). */
  skipped: SkippedCr[];
  /** Domains whose previous entry is kept because their lookup failed. */
  kept: { cr: string; domain: string }[];
  /** Endpoints passed over (bad access IP), even when another endpoint served the CR. */
  ignoredEndpoints: IgnoredEndpoint[];
}

export const RUNNING = 'Running';

export function registryKeyOf(registryId: string, region: string): string {
  return `${region}/${registryId}`;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The host of `spec.docker.server` (`host[:port]`, already validated by the CRD), lower-cased. */
export function domainOfServer(server: string): string {
  return server.replace(/:[0-9]+$/, '').toLowerCase();
}

/** CRs whose spec asks for private resolution (a deleting or invalid CR no longer asks for anything). */
export function wantsPrivateNetwork(cr: CrView): boolean {
  return !cr.deleting && !cr.invalid && cr.spec.privateNetwork?.enabled === true && cr.spec.tcr !== undefined;
}

type Choice = { ip: string } | { reason: string };

/**
 * The endpoint of `vpcId` when given, else the first one in `Running` state; endpoints are sorted by
 * (vpcId, subnetId, accessIp) first, so the answer does not depend on the API's order. An endpoint must be
 * `Running` in both cases (an IP of a link still being created or deleted does not serve pulls) and have a
 * valid IP; the others are passed over and reported.
 */
function chooseEndpoint(
  registry: string,
  endpoints: readonly InternalEndpoint[],
  vpcId: string | undefined,
  ignored: IgnoredEndpoint[],
): Choice {
  const sorted = [...endpoints].sort(
    (a, b) => compare(a.vpcId, b.vpcId) || compare(a.subnetId, b.subnetId) || compare(a.accessIp, b.accessIp),
  );
  const inVpc = vpcId === undefined ? sorted : sorted.filter((e) => e.vpcId === vpcId);
  const where = vpcId === undefined ? '' : ` in ${vpcId}`;
  if (inVpc.length === 0) return { reason: `registry ${registry} has no private endpoint${where}` };
  const running = inVpc.filter((e) => e.status === RUNNING);
  if (running.length === 0) {
    const states = [...new Set(inVpc.map((e) => e.status))].sort().join(', ');
    return { reason: `no private endpoint of registry ${registry}${where} is ${RUNNING} (${states})` };
  }
  for (const endpoint of running) {
    const problem = describeIpProblem(endpoint.accessIp);
    if (problem === undefined) return { ip: endpoint.accessIp };
    ignored.push({ registry, vpcId: endpoint.vpcId, reason: `access IP ${problem}` });
  }
  return { reason: `no ${RUNNING} private endpoint of registry ${registry}${where} has a valid access IP` };
}

/** The desired ConfigMap data; deterministic: the same input always gives the same bytes. */
export function planPrivateEndpoints(input: PrivateEndpointsInput): PrivateEndpointsPlan {
  const wanted = input.crs.filter(wantsPrivateNetwork).sort((a, b) => compare(a.name, b.name));
  const previous = new Map(input.previous.map((e) => [e.domain.toLowerCase(), e.ip]));
  const skipped: SkippedCr[] = [];
  const kept: { cr: string; domain: string }[] = [];
  const ignoredEndpoints: IgnoredEndpoint[] = [];
  const ignoredSeen = new Set<string>();
  const byDomain = new Map<string, { ip: string; cr: string }>();

  for (const cr of wanted) {
    const tcr = cr.spec.tcr!;
    const domain = domainOfServer(cr.spec.docker.server);
    const domainProblem = describeDomainProblem(domain);
    if (domainProblem) {
      skipped.push({
        cr: cr.name,
        reason: `spec.docker.server cannot be mapped in a hosts file: ${domainProblem}`,
      });
      continue;
    }
    const registry = registryKeyOf(tcr.registryId, tcr.region);
    const lookup = input.lookups.get(registry) ?? {
      ok: false,
      reason: `registry ${registry} was not looked up`,
    };
    let ip: string | undefined;
    if (lookup.ok) {
      const ignored: IgnoredEndpoint[] = [];
      const choice = chooseEndpoint(registry, lookup.endpoints, cr.spec.privateNetwork?.vpcId, ignored);
      for (const i of ignored) {
        // Several CRs may share a registry: report each bad endpoint once.
        const id = `${i.registry}|${i.vpcId}|${i.reason}`;
        if (!ignoredSeen.has(id)) ignoredEndpoints.push(i);
        ignoredSeen.add(id);
      }
      if ('reason' in choice) skipped.push({ cr: cr.name, reason: choice.reason });
      else ip = choice.ip;
    } else {
      skipped.push({ cr: cr.name, reason: lookup.reason });
      ip = previous.get(domain);
      if (ip !== undefined) kept.push({ cr: cr.name, domain });
    }
    if (ip === undefined) continue;
    const taken = byDomain.get(domain);
    if (taken === undefined) byDomain.set(domain, { ip, cr: cr.name });
    else if (taken.ip !== ip) {
      // CRs are visited by name, so the first name wins every time.
      skipped.push({
        cr: cr.name,
        reason: `${domain} is already mapped to ${taken.ip} by ImagePullSecret ${taken.cr}; ${ip} is not used`,
      });
    }
  }

  const enabled = wanted.length > 0;
  const hosts = enabled
    ? [...byDomain.entries()]
        .map(([domain, { ip }]) => ({ domain, ip }))
        .sort((a, b) => compare(a.domain, b.domain))
    : [];
  return {
    enabled,
    hosts,
    data: formatUpdaterConfigData(enabled, hosts),
    crs: wanted.map((cr) => cr.name),
    skipped,
    kept,
    ignoredEndpoints,
  };
}
