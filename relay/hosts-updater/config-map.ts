// The contract between the scheduled function that decides the domain → private IP map and the node agent
// that applies it: ConfigMap `updater-config` in namespace `tcr-assistant-system`.
//
//   data:
//     enabled: "true"                 # anything else (or no ConfigMap at all): no managed block on nodes
//     hosts: '[{"domain":"myreg.tencentcloudcr.com","ip":"10.0.0.5"}]'
import { z } from 'zod';
import {
  describeDomainProblem,
  describeIpProblem,
  type HostEntry,
  type RejectedEntry,
  validateEntries,
} from './hosts-file.js';

export const UPDATER_NAMESPACE = 'tcr-assistant-system';
export const UPDATER_CONFIG_MAP_NAME = 'updater-config';

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
