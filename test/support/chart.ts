import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ensureTools } from '../../infra/image/build-image.js';
import { REPO_ROOT } from '../../infra/local/paths.js';

const run = promisify(execFile);

export const CHART_DIR = path.join(REPO_ROOT, 'infra', 'helm', 'tcr-assistant');
export const CHART_NAMESPACE = 'tcr-assistant-system';

/** A rendered Kubernetes object, loosely typed (tests read what they check). */
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
export type Manifest = Record<string, any>;

let helmPath: Promise<string> | undefined;
/** The helm binary setup builds (build-tools.sh, cached per machine). */
export function helmBinary(): Promise<string> {
  helmPath ??= ensureTools().then((dir) => path.join(dir, 'helm'));
  return helmPath;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm; never throws on a non-zero exit (tests assert on the message). */
export async function helm(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await run(await helmBinary(), args, { maxBuffer: 64 << 20, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * `-f <file>` with the values of a flat record (`{ 'relay.replicas': 2 }`), nested. A values file, not `--set`:
 * helm's --set syntax would read `{tcr}` as a list and split on commas.
 */
export function setArgs(values: Record<string, string | number | boolean>): string[] {
  const nested: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const parts = key.split('.');
    let node = nested;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1] as string] = value;
  }
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tcr-values-')), 'values.json');
  writeFileSync(file, JSON.stringify(nested));
  return ['-f', file];
}

/** The minimum an install needs. */
export const REQUIRED_VALUES = { clusterId: 'test-cluster', 'redis.url': 'redis://127.0.0.1:6379' };

/** `helm template`, parsed; throws with helm's message when it refuses. */
export async function renderChart(
  values: Record<string, string | number | boolean> = REQUIRED_VALUES,
  opts: { release?: string; namespace?: string; extra?: string[] } = {},
): Promise<Manifest[]> {
  const result = await helm([
    'template',
    opts.release ?? 'tcr-assistant',
    CHART_DIR,
    '--namespace',
    opts.namespace ?? CHART_NAMESPACE,
    ...setArgs(values),
    ...(opts.extra ?? []),
  ]);
  if (result.code !== 0) throw new Error(result.stderr.trim());
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

export function byKind(objects: Manifest[], kind: string): Manifest[] {
  return objects.filter((o) => o.kind === kind);
}

/** Every container of every workload, with the pod spec around it. */
export function containersOf(
  objects: Manifest[],
): { workload: Manifest; pod: Manifest; container: Manifest }[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')
    .flatMap((workload) =>
      (workload.spec.template.spec.containers as Manifest[]).map((container) => ({
        workload,
        pod: workload.spec.template.spec,
        container,
      })),
    );
}
