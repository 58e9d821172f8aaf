import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../zod-issues.js';
import { TcrTokenSource } from './image-pull-secret.js';
import { ClusterId, FLEET_JOB_CLUSTER } from './jobs.js';

// The fleet file: which clusters the functions serve, how to reach each one, and which TCR registries issue
// tokens for which clusters. One token per registry (and token type) is issued per rotation and copied to
// every cluster that needs it; the ImagePullSecret CRs in each cluster (spec.tcr) say where it goes.

const FleetClusterId = ClusterId.refine((id) => id !== FLEET_JOB_CLUSTER, {
  message: `"${FLEET_JOB_CLUSTER}" is reserved for fleet-wide jobs`,
});

export const FleetCluster = z
  .strictObject({
    id: FleetClusterId,
    /** A context of a kubeconfig file (default file: $KUBECONFIG). */
    kubeconfig: z.strictObject({ context: z.string().min(1), path: z.string().min(1).optional() }).optional(),
    /** A TKE cluster: its kubeconfig comes from DescribeClusterKubeconfig (cached per warm instance). */
    tke: z
      .strictObject({
        clusterId: z.string().regex(/^cls-[a-z0-9]+$/, 'must be a TKE cluster id such as cls-abc123xy'),
        region: TcrTokenSource.shape.region,
        extranet: z.boolean().default(false),
      })
      .optional(),
  })
  .refine((c) => (c.kubeconfig === undefined) !== (c.tke === undefined), {
    message: 'needs exactly one of kubeconfig or tke',
  });
export type FleetCluster = z.infer<typeof FleetCluster>;

export const FleetRegistry = z.strictObject({
  registryId: TcrTokenSource.shape.registryId,
  region: TcrTokenSource.shape.region,
  tokenType: TcrTokenSource.shape.tokenType,
  refreshBeforeSeconds: TcrTokenSource.shape.refreshBeforeSeconds,
  /** Rotate a token this old even if it does not expire (long-term tokens never do unless configured). */
  rotateAfterSeconds: z.number().int().min(300).optional(),
  /** Cluster ids, or ["*"] for every cluster of the fleet. */
  clusters: z.array(z.string()).min(1, 'must list at least one cluster id, or "*"'),
  /**
   * Where the Tencent Cloud API key comes from: a Secret (keys SecretId, SecretKey) in tcr-assistant-system of
   * one fleet cluster, or (when absent) the functions' environment / role.
   */
  credentialsSecretRef: z.strictObject({ cluster: ClusterId, name: z.string().min(1).max(253) }).optional(),
});
export type FleetRegistry = z.infer<typeof FleetRegistry>;

export const Fleet = z
  .strictObject({
    /** Names this fleet in token descriptions, so two fleets sharing a registry never revoke each other's. */
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/, 'must be a short lower-case name'),
    clusters: z.array(FleetCluster).min(1, 'must list at least one cluster'),
    registries: z.array(FleetRegistry).default([]),
  })
  .superRefine((fleet, ctx) => {
    const ids = new Set<string>();
    fleet.clusters.forEach((c, i) => {
      if (ids.has(c.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'id'],
          message: `duplicate cluster id "${c.id}"`,
        });
      }
      ids.add(c.id);
    });
    const keys = new Set<string>();
    fleet.registries.forEach((r, i) => {
      const key = `${r.registryId}/${r.tokenType}`;
      if (keys.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['registries', i],
          message: `${r.registryId} (${r.tokenType}) is listed twice`,
        });
      }
      keys.add(key);
      r.clusters.forEach((c, j) => {
        if (c !== '*' && !ids.has(c)) {
          ctx.addIssue({
            code: 'custom',
            path: ['registries', i, 'clusters', j],
            message: `unknown cluster "${c}" (the fleet has: ${[...ids].join(', ')})`,
          });
        }
      });
      if (r.credentialsSecretRef && !ids.has(r.credentialsSecretRef.cluster)) {
        ctx.addIssue({
          code: 'custom',
          path: ['registries', i, 'credentialsSecretRef', 'cluster'],
          message: `unknown cluster "${r.credentialsSecretRef.cluster}"`,
        });
      }
    });
  });
export type Fleet = z.infer<typeof Fleet>;

/** A path with the entry's name where there is one: `clusters[1] (gz-2).tke.clusterId`. */
function describePath(raw: unknown, path: readonly PropertyKey[]): string {
  let out = '';
  let node: unknown = raw;
  for (const part of path) {
    if (typeof part === 'number') {
      out += `[${part}]`;
      node = Array.isArray(node) ? node[part] : undefined;
      const label =
        node && typeof node === 'object'
          ? ((node as Record<string, unknown>).id ?? (node as Record<string, unknown>).registryId)
          : undefined;
      if (typeof label === 'string' && label !== '') out += ` (${label})`;
    } else {
      out += out === '' ? String(part) : `.${String(part)}`;
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[String(part)] : undefined;
    }
  }
  return out || '(fleet)';
}

export class FleetFileError extends Error {
  override readonly name = 'FleetFileError';
}

/** Parses a fleet document (YAML or JSON text); the error lists every problem with the entry it is in. */
export function parseFleet(text: string, source = 'fleet file'): Fleet {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new FleetFileError(`${source} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const result = Fleet.safeParse(raw);
  if (result.success) return result.data;
  const problems = describeIssues(result.error.issues, { path: (p) => describePath(raw, p) });
  throw new FleetFileError(`${source} is invalid: ${problems}`);
}

export function loadFleetFile(path: string): Fleet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new FleetFileError(
      `cannot read fleet file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  return parseFleet(text, `fleet file ${path}`);
}

/** The clusters a registry's token goes to. */
export function clustersOfRegistry(fleet: Fleet, registry: FleetRegistry): string[] {
  return registry.clusters.includes('*') ? fleet.clusters.map((c) => c.id) : [...new Set(registry.clusters)];
}
