import { execFile } from 'node:child_process';
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

/** `--set` arguments from a flat record: `{ 'relay.replicas': 2 }` → `--set relay.replicas=2`. */
export function setArgs(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([k, v]) => [
    typeof v === 'string' ? '--set-string' : '--set',
    `${k}=${v}`,
  ]);
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
