// The contract between the scheduled function that decides the domain → private IP map and the node agent
// that applies it: ConfigMap `updater-config` in namespace `tcr-assistant-system`.
//
//   data:
//     enabled: "true"                 # anything else (or no ConfigMap at all): no managed block on nodes
//     hosts: '[{"domain":"myreg.tencentcloudcr.com","ip":"10.0.0.5"}]'
import { isIP } from 'node:net';
import { z } from 'zod';

export const UPDATER_CONFIG_MAP_NAME = 'updater-config';

// ---------------------------------------------------------------------------------------------------------
// Entry validation (the producer's schema and the agent's lenient reader share these rules)

export interface HostEntry {
  domain: string;
  ip: string;
}

export interface RejectedEntry {
  /** Position in the input array (-1 when the input itself is not an array). */
  index: number;
  entry: unknown;
  reason: string;
}

export interface ValidatedEntries {
  /** Normalized (lower-case domain, no trailing dot), one per domain, sorted by domain. */
  valid: HostEntry[];
  rejected: RejectedEntry[];
}

// ---------------------------------------------------------------------------------------------------------
// Validation

/** Why `domain` cannot go into a hosts file, or undefined when it can. */
export function describeDomainProblem(domain: string): string | undefined {
  if (domain.length === 0) return 'domain is empty';
  if (/\s/.test(domain)) return 'domain contains whitespace';
  if (domain.includes('*')) return 'wildcard domains are not supported by hosts files';
  // One trailing dot (fully qualified form) is accepted and dropped.
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (name.length === 0) return 'domain is empty';
  if (name.length > 253) return `domain is ${name.length} characters long (at most 253)`;
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0) return 'domain has an empty label (two dots in a row or a leading dot)';
    if (label.length > 63)
      return `label "${label.slice(0, 20)}…" is ${label.length} characters long (at most 63)`;
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(label)) {
      return `label "${label}" may contain only letters, digits and inner hyphens`;
    }
  }
  // Rules out IPv4 literals such as 10.0.0.1 given as a domain.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) return 'the top-level label must not be all digits';
  return undefined;
}

/** Why `ip` cannot go into a hosts file, or undefined when it can. */
export function describeIpProblem(ip: string): string | undefined {
  if (isIP(ip) === 0) return `"${ip.slice(0, 64)}" is not an IPv4 or IPv6 address`;
  // A zone id (fe80::1%eth0) names a node-local interface: meaningless for a fleet-wide map.
  if (ip.includes('%')) return 'IPv6 zone identifiers are not supported';
  return undefined;
}

function normalizeDomain(domain: string): string {
  const lower = domain.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The normalized entry, or why it cannot be written. */
function checkEntry(item: unknown): HostEntry | string {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return 'entry must be an object with "domain" and "ip"';
  }
  const { domain, ip } = item as { domain?: unknown; ip?: unknown };
  if (typeof domain !== 'string') return '"domain" must be a string';
  if (typeof ip !== 'string') return '"ip" must be a string';
  return describeDomainProblem(domain) ?? describeIpProblem(ip) ?? { domain: normalizeDomain(domain), ip };
}

/**
 * Splits raw entries (anything: they come from a ConfigMap) into entries safe to write and rejections with a
 * reason. Domains are lower-cased (hosts lookups ignore case) and lose a trailing dot. One entry per domain:
 * when a domain appears twice the LAST entry wins (like a later key in a JSON object) and the earlier one is
 * reported as rejected. The result is sorted by domain, so the same map always renders the same block.
 */
export function validateEntries(raw: unknown): ValidatedEntries {
  if (!Array.isArray(raw)) {
    return { valid: [], rejected: [{ index: -1, entry: raw, reason: 'hosts must be a JSON array' }] };
  }
  const rejected: RejectedEntry[] = [];
  const byDomain = new Map<string, { index: number; entry: HostEntry; original: unknown }>();
  raw.forEach((item: unknown, index) => {
    const checked = checkEntry(item);
    if (typeof checked === 'string') {
      rejected.push({ index, entry: item, reason: checked });
      return;
    }
    const earlier = byDomain.get(checked.domain);
    if (earlier) {
      rejected.push({
        index: earlier.index,
        entry: earlier.original,
        reason: `superseded by entry ${index} for the same domain (the last one wins)`,
      });
    }
    byDomain.set(checked.domain, { index, entry: checked, original: item });
  });
  const valid = [...byDomain.values()]
    .map((v) => v.entry)
    .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  rejected.sort((a, b) => a.index - b.index);
  return { valid, rejected };
}

// ---------------------------------------------------------------------------------------------------------
// The ConfigMap's data

const checked = (describe: (value: string) => string | undefined) =>
  z.string().superRefine((value, ctx) => {
    const problem = describe(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** One mapping: a registry host and the IPv4/IPv6 address it must resolve to on every node. */
export const HostEntrySchema = z.object({
  /** A DNS name: labels of 1-63 letters, digits and inner hyphens, at most 253 characters, no wildcard. */
  domain: checked(describeDomainProblem),
  ip: checked(describeIpProblem),
});

/** `data.hosts`: a JSON array of entries, as a string (ConfigMap values are strings). */
export const HostsJsonSchema = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'hosts is not valid JSON' });
      return z.NEVER;
    }
  })
  .pipe(z.array(HostEntrySchema));

/**
 * `data` of the ConfigMap, strictly: what a producer must write. The agent itself reads more leniently
 * (readDesiredHosts): one bad entry is skipped, not the whole map.
 */
export const UpdaterConfigDataSchema = z.object({
  enabled: z.enum(['true', 'false']),
  /** Optional: absent means an empty list. */
  hosts: HostsJsonSchema.optional(),
});
export type UpdaterConfigData = z.input<typeof UpdaterConfigDataSchema>;

/** The ConfigMap `data` for a map (for producers and tests). */
export function formatUpdaterConfigData(
  enabled: boolean,
  entries: readonly HostEntry[],
): Record<string, string> {
  return {
    enabled: String(enabled),
    hosts: JSON.stringify(entries.map(({ domain, ip }) => ({ domain, ip }))),
  };
}

/** What the agent should do with the hosts file, given the ConfigMap. */
export type DesiredHosts =
  /** No ConfigMap (never created, or deleted): remove the block. */
  | { state: 'absent' }
  /** `enabled` is not "true": remove the block. */
  | { state: 'disabled'; enabled: string | undefined }
  /** Write these entries (no valid entry: remove the block); `rejected` are skipped, with the reason. */
  | { state: 'enabled'; entries: HostEntry[]; rejected: RejectedEntry[] }
  /**
   * `hosts` is not a JSON array: leave the hosts file as it is. A producer bug must not wipe a working
   * map from every node at once; the reason is logged until the ConfigMap is fixed.
   */
  | { state: 'invalid'; reason: string };

/** Reads the agent's instructions from the ConfigMap (or its absence). */
export function readDesiredHosts(
  configMap: { data?: Record<string, string> | undefined } | null | undefined,
): DesiredHosts {
  if (!configMap) return { state: 'absent' };
  const enabled = configMap.data?.enabled;
  if (enabled !== 'true') return { state: 'disabled', enabled };
  const text = configMap.data?.hosts;
  if (text === undefined || text.trim() === '') return { state: 'enabled', entries: [], rejected: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { state: 'invalid', reason: `data.hosts is not valid JSON: ${(error as Error).message}` };
  }
  if (!Array.isArray(raw)) return { state: 'invalid', reason: 'data.hosts must be a JSON array' };
  const { valid, rejected } = validateEntries(raw);
  return { state: 'enabled', entries: valid, rejected };
}
