import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { type BuiltImage, buildImage } from '../../infra/image/build-image.js';
import { type ManagedProcess, startProcess } from '../../infra/local/processes.js';

const run = promisify(execFile);

let built: Promise<BuiltImage> | undefined;
/** The image, built by the project's own script (BuildKit's cache makes a rebuild take seconds). */
export function projectImage(): Promise<BuiltImage> {
  built ??= buildImage({ log: () => {} });
  return built;
}

/** The image's config (Env, User, WorkingDir) and its layers unpacked into `dir`: a container's root. */
export async function unpackImage(
  tarball: string,
  dir: string,
): Promise<{ root: string; env: string[]; user: string }> {
  const oci = path.join(dir, 'oci');
  const root = path.join(dir, 'root');
  await mkdir(oci, { recursive: true });
  await mkdir(root, { recursive: true });
  await run('tar', ['-xf', tarball, '-C', oci]);
  const blob = (digest: string) => path.join(oci, 'blobs', 'sha256', digest.slice(7));
  const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  for (const layer of manifest.layers as { digest: string }[]) {
    await run('tar', ['-xzf', blob(layer.digest), '-C', root]);
  }
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
  return { root, env: config.config.Env ?? [], user: config.config.User ?? '0:0' };
}

/**
 * Runs `command` as a container of this image would run it: in its own PID namespace (the command is PID 1,
 * so its own signal handling is what counts), the image's root read-only, /proc mounted, the pod's
 * ServiceAccount token at the in-cluster path, `binds` (FROM:TO) for hostPath volumes, as `user`, with
 * exactly `env` (nothing of this process's environment). Mounts live in a private mount namespace: nothing
 * on the machine changes. The image root is a private copy (mount points are made in it).
 */
export async function runInImage(opts: {
  name: string;
  root: string;
  command: string[];
  env: Record<string, string>;
  user: string;
  tokenDir: string;
  binds?: { from: string; to: string }[];
  logFile: string;
}): Promise<ManagedProcess> {
  const mountPoints = ['proc', 'var/run/secrets/kubernetes.io/serviceaccount'];
  for (const dir of mountPoints) await mkdir(path.join(opts.root, dir), { recursive: true });
  for (const b of opts.binds ?? []) {
    await mkdir(path.dirname(path.join(opts.root, b.to)), { recursive: true });
    if (
      await run('test', ['-d', b.from]).then(
        () => true,
        () => false,
      )
    )
      await mkdir(path.join(opts.root, b.to), { recursive: true });
    else await writeFile(path.join(opts.root, b.to), '', { flag: 'a' });
  }
  const script = [
    'set -e',
    'root="$1"; tokens="$2"; user="$3"; shift 3',
    'mount --bind "$root" "$root"',
    'mount -o remount,bind,ro "$root"',
    'mount -t proc proc "$root/proc"',
    'mount --bind -o ro "$tokens" "$root/var/run/secrets/kubernetes.io/serviceaccount"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    'while [ "$1" != "--" ]; do mount --bind "${1%%=*}" "$root${1#*=}"; shift; done; shift',
    'exec chroot --userspec="$user" "$root" "$@"',
  ].join('\n');
  return startProcess({
    name: opts.name,
    command: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--pid',
      '--fork',
      '--kill-child=SIGKILL',
      'sh',
      '-c',
      script,
      'sh',
      opts.root,
      opts.tokenDir,
      opts.user,
      ...(opts.binds ?? []).map((b) => `${b.from}=${b.to}`),
      '--',
      ...opts.command,
    ],
    logFile: opts.logFile,
    env: opts.env,
  });
}

/** The host PID of the command a `runInImage` process runs (PID 1 of its namespace). */
export function containerPid(proc: ManagedProcess): number | undefined {
  const childrenOf = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  // supervise.sh → unshare → the command.
  const unshare = childrenOf(proc.child.pid ?? -1)[0];
  return unshare === undefined ? undefined : childrenOf(unshare)[0];
}
