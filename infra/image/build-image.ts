// Builds the repository's Dockerfile into an OCI image tarball with BuildKit, daemonless and offline:
//   npm run build:image [-- --tag 0.1.0 --out dist/image/tcr-assistant.oci.tar]
// buildkitd and buildctl come from build-tools.sh (Go module proxy, cached). buildkitd runs only for the
// build, as root, in its own mount namespace (its overlay mounts never touch the machine's) and its own
// network namespace with only loopback: nothing in the build can reach any other address, which also proves
// that no base image is pulled. The Dockerfile's NODE_IMAGE is supplied as an `oci-layout://` named context
// (node-base.ts: this machine's Node of the same release) and its `npm-cache` context is this machine's npm
// cache, installed with `npm ci --offline`. Why the result is the image users build: docs/adr-011-one-image.md.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { REPO_ROOT } from '../local/paths.js';
import { startProcess, waitUntilReady } from '../local/processes.js';
import { ensureNodeBase } from './node-base.js';

const run = promisify(execFile);

export const IMAGE_REPOSITORY = 'tcr-assistant';

export interface BuiltImage {
  /** `tcr-assistant:<tag>`: the name recorded in the tarball (containerd's import uses it). */
  name: string;
  /** OCI image layout tarball: `ctr images import` (the node's importImage), or unpacked for `skopeo copy oci:`. */
  tarball: string;
  manifestDigest: string;
  /** Sum of the compressed layers (what a node pulls). */
  compressedBytes: number;
  /** Sum of the uncompressed layers (what a node stores). */
  uncompressedBytes: number;
  /** Wall time of the whole call, tools and base included. */
  seconds: number;
  /** Steps BuildKit answered from its cache / ran. */
  cachedSteps: number;
  ranSteps: number;
}

export function cacheRoot(): string {
  return (
    process.env.TCR_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'tcr-assistant')
  );
}

/** The Dockerfile's `ARG NODE_IMAGE=` default: the reference the local base stands in for. */
export function dockerfileNodeImage(dockerfile = path.join(REPO_ROOT, 'Dockerfile')): string {
  const m = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(dockerfile, 'utf8'));
  if (!m?.[1]) throw new Error(`${dockerfile} has no "ARG NODE_IMAGE=<image>" line`);
  return m[1];
}

/** `tcr-assistant`'s version from package.json: the default tag. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** buildkitd, buildctl and helm, built once per machine (build-tools.sh). */
export async function ensureTools(): Promise<string> {
  const { stdout } = await run('bash', [path.join(REPO_ROOT, 'infra', 'scripts', 'build-tools.sh')], {
    maxBuffer: 16 << 20,
  });
  const dir = stdout.trim().split('\n').pop();
  if (!dir) throw new Error('build-tools.sh printed no folder');
  return dir;
}

async function layerSizes(tarball: string): Promise<{ compressed: number; uncompressed: number }> {
  const read = async (member: string) =>
    (await run('tar', ['-xOf', tarball, member], { maxBuffer: 64 << 20, encoding: 'buffer' })).stdout;
  const index = JSON.parse((await read('index.json')).toString()) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]?.digest;
  if (!digest) throw new Error(`${tarball} has an empty index`);
  const manifest = JSON.parse((await read(`blobs/sha256/${digest.slice(7)}`)).toString()) as {
    layers: { digest: string; size: number }[];
  };
  let uncompressed = 0;
  for (const layer of manifest.layers) {
    const { stdout } = await run(
      'bash',
      ['-c', `tar -xOf "$0" "blobs/sha256/$1" | gzip -dc | wc -c`, tarball, layer.digest.slice(7)],
      { maxBuffer: 1 << 20 },
    );
    uncompressed += Number(stdout.trim());
  }
  return { compressed: manifest.layers.reduce((n, l) => n + l.size, 0), uncompressed };
}

export async function buildImage(
  opts: { tag?: string; out?: string; noCache?: boolean; log?: (line: string) => void } = {},
): Promise<BuiltImage> {
  const started = Date.now();
  const log = opts.log ?? ((line: string) => console.error(`[build-image] ${line}`));
  const tag = opts.tag ?? packageVersion();
  const name = `${IMAGE_REPOSITORY}:${tag}`;
  const out = path.resolve(
    opts.out ?? path.join(REPO_ROOT, 'dist', 'image', `${IMAGE_REPOSITORY}-${tag}.oci.tar`),
  );

  const nodeImage = dockerfileNodeImage();
  const wanted = /^node:(\d+\.\d+\.\d+)-/.exec(nodeImage)?.[1];
  const tools = await ensureTools();
  const cache = cacheRoot();
  const base = await ensureNodeBase(path.join(cache, 'image', 'base'), { log });
  if (wanted !== base.nodeVersion) {
    throw new Error(
      `the Dockerfile's NODE_IMAGE is ${nodeImage} but this machine has Node ${base.nodeVersion}: ` +
        'the local base must be the same Node release (update NODE_IMAGE, or install that Node)',
    );
  }
  // Only the content store: npm's logs beside it change at every npm run and would defeat the step cache.
  const npmCache = path.join((await run('npm', ['config', 'get', 'cache'])).stdout.trim(), '_cacache');

  const work = mkdtempSync(path.join(os.tmpdir(), 'tcr-buildkit-'));
  const socket = path.join(work, 'buildkitd.sock');
  // Build containers' cgroups go under a parent of this run's own, removed afterwards (runc removes each
  // container's; the parent would stay behind on the machine).
  const cgroupParent = `tcr-buildkit-${process.pid}`;
  const config = path.join(work, 'buildkitd.toml');
  await writeFile(config, `[worker.oci]\n  defaultCgroupParent = "${cgroupParent}"\n`);
  const state = path.join(cache, 'image', 'buildkit');
  await mkdir(state, { recursive: true });
  await mkdir(path.dirname(out), { recursive: true });
  // One buildkitd per state folder at a time: the lock is taken on a file descriptor that buildkitd inherits,
  // and every step execs the next, so supervise.sh's SIGTERM reaches buildkitd itself.
  const daemon = startProcess({
    name: 'buildkitd',
    command: 'unshare',
    args: [
      '--mount',
      '--net',
      '--propagation',
      'private',
      'sh',
      '-c',
      'exec 9>"$1" && flock 9 && ip link set lo up && shift && exec "$@"',
      'sh',
      path.join(cache, 'image', 'buildkit.lock'),
      path.join(tools, 'buildkitd'),
      '--config',
      config,
      '--root',
      state,
      '--addr',
      `unix://${socket}`,
      '--containerd-worker=false',
      '--oci-worker=true',
      '--oci-worker-binary=runc',
      '--oci-worker-snapshotter=overlayfs',
      '--oci-worker-net=host',
      '--oci-worker-gc',
      // MB: the current build's layers (base, node_modules, bundles) with room for one older generation.
      '--oci-worker-gc-keepstorage=1500',
    ],
    logFile: path.join(work, 'buildkitd.log'),
    cleanupDir: work,
  });
  const buildctl = path.join(tools, 'buildctl');
  try {
    await waitUntilReady(
      daemon,
      async () => {
        await run(buildctl, ['--addr', `unix://${socket}`, 'debug', 'workers']);
        return true;
      },
      120_000,
      'buildkitd answered',
    );
    const epoch = await run('git', ['-C', REPO_ROOT, 'log', '-1', '--format=%ct']).then(
      (r) => r.stdout.trim(),
      () => '0',
    );
    const metadata = path.join(work, 'metadata.json');
    const args = [
      '--addr',
      `unix://${socket}`,
      'build',
      '--progress=plain',
      '--frontend=dockerfile.v0',
      '--local',
      `context=${REPO_ROOT}`,
      '--local',
      `dockerfile=${REPO_ROOT}`,
      '--local',
      `npm-cache=${npmCache}`,
      '--oci-layout',
      `node-base=${base.dir}`,
      '--opt',
      `context:${nodeImage}=oci-layout://node-base@${base.manifestDigest}`,
      '--opt',
      'context:npm-cache=local:npm-cache',
      '--opt',
      'build-arg:NPM_CI_FLAGS=--offline',
      '--opt',
      `build-arg:VERSION=${tag}`,
      // Layer timestamps from the last commit: the same sources give the same image digest.
      '--opt',
      `build-arg:SOURCE_DATE_EPOCH=${epoch}`,
      '--output',
      `type=oci,dest=${out}.tmp,name=${name},rewrite-timestamp=true`,
      '--metadata-file',
      metadata,
      ...(opts.noCache ? ['--no-cache'] : []),
    ];
    log(
      `building ${name} from the Dockerfile (base ${nodeImage} = local ${base.manifestDigest.slice(0, 19)})`,
    );
    const progress = await new Promise<string>((resolve, reject) => {
      const child = execFile(buildctl, args, { maxBuffer: 64 << 20 }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`buildctl build failed:\n${stderr.split('\n').slice(-40).join('\n')}`));
        else resolve(stderr);
      });
      child.stderr?.on('data', (d: Buffer) => {
        if (process.env.TCR_BUILD_VERBOSE) process.stderr.write(d);
      });
    });
    await run('mv', [`${out}.tmp`, out]);
    const meta = JSON.parse(await readFile(metadata, 'utf8')) as Record<string, string>;
    const sizes = await layerSizes(out);
    const built: BuiltImage = {
      name,
      tarball: out,
      manifestDigest: meta['containerimage.digest'] ?? '',
      compressedBytes: sizes.compressed,
      uncompressedBytes: sizes.uncompressed,
      seconds: (Date.now() - started) / 1000,
      cachedSteps: (progress.match(/^#\d+ CACHED$/gm) ?? []).length,
      ranSteps: (progress.match(/^#\d+ DONE [\d.]+s$/gm) ?? []).length,
    };
    log(
      `${name} ${built.manifestDigest.slice(0, 19)}: ${(built.compressedBytes / 1048576).toFixed(1)} MiB compressed, ` +
        `${(built.uncompressedBytes / 1048576).toFixed(1)} MiB on disk, ${built.seconds.toFixed(1)} s ` +
        `(${built.cachedSteps} steps cached) → ${path.relative(process.cwd(), out)}`,
    );
    return built;
  } finally {
    await daemon.stop('SIGTERM', 15_000);
    await removeCgroups(cgroupParent);
    await rm(work, { recursive: true, force: true });
    await rm(`${out}.tmp`, { force: true });
  }
}

/** Removes a cgroup folder of ours, depth first, under every controller (v1 and v2 layouts); empty by then. */
async function removeCgroups(name: string): Promise<void> {
  const removeTree = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
    await rmdir(dir).catch(() => {});
  };
  const root = '/sys/fs/cgroup';
  const dirs = [path.join(root, name)];
  for (const controller of await readdir(root).catch(() => [] as string[]))
    dirs.push(path.join(root, controller, name));
  await Promise.all(dirs.map(removeTree));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tag: { type: 'string' },
      out: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const built = await buildImage({ tag: values.tag, out: values.out, noCache: values['no-cache'] });
  const size = await stat(built.tarball);
  if (values.json) console.log(JSON.stringify({ ...built, tarballBytes: size.size }));
  else console.log(built.tarball);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`build-image: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
