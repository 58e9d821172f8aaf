import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './paths.js';

const run = promisify(execFile);

// Container images without the internet: static Go binaries from infra/images, put by hand into one-layer
// OCI image layouts (what `skopeo copy oci:DIR:TAG` pushes) and OCI archives (what `ctr images import` reads).

/** One file of an image's single layer: from a file on this machine, or literal content. */
export interface ImageFile {
  /** Absolute path inside the image, e.g. `/hello`. */
  path: string;
  source?: string;
  content?: string | Buffer;
  /** Default 0o755 for `source`, 0o644 for `content`. */
  mode?: number;
}

export interface ImageSpec {
  /** Full reference containerd names the image by when imported, e.g. `tcr.local/pause:v1`. */
  ref: string;
  files: ImageFile[];
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

export interface BuiltImage {
  ref: string;
  /** The tag part of `ref`: the image's name in the layout (`oci:DIR:TAG`). */
  tag: string;
  /** `sha256:...` of the manifest: what a registry or containerd reports for it. */
  digest: string;
  layoutDir: string;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The tag of a reference (`host:5000/a/b:v1` → `v1`; none → `latest`). */
export function tagOf(ref: string): string {
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  return colon >= 0 ? last.slice(colon + 1) : 'latest';
}

/**
 * Writes a one-layer OCI image layout into `dir`: the layer is a reproducible tar (sorted, mtime 0, root
 * owned) of `spec.files`. The index names the image by its tag (`org.opencontainers.image.ref.name`, for
 * skopeo) and by its full reference (`io.containerd.image.name`, for `ctr images import`).
 */
export async function writeImageLayout(dir: string, spec: ImageSpec): Promise<BuiltImage> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const staging = await mkdtemp(path.join(dir, '.layer-'));
  try {
    for (const file of spec.files) {
      const target = path.join(staging, file.path);
      await mkdir(path.dirname(target), { recursive: true });
      if (file.source !== undefined) await copyFile(file.source, target);
      else await writeFile(target, file.content ?? '');
      await chmod(target, file.mode ?? (file.source !== undefined ? 0o755 : 0o644));
    }
    const tarPath = path.join(dir, 'layer.tar');
    const entries = (await readdir(staging)).sort();
    await run('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-cf',
      tarPath,
      '-C',
      staging,
      ...entries,
    ]);
    const tar = await readFile(tarPath);
    await run('gzip', ['-n', '-f', tarPath]);
    const layer = await readFile(`${tarPath}.gz`);
    await rm(`${tarPath}.gz`, { force: true });
    const put = async (data: Buffer) => {
      const digest = sha256(data);
      await writeFile(path.join(blobs, digest), data);
      return { digest: `sha256:${digest}`, size: data.length };
    };
    const layerRef = await put(layer);
    const config: Record<string, unknown> = {};
    if (spec.entrypoint) config.Entrypoint = spec.entrypoint;
    if (spec.cmd) config.Cmd = spec.cmd;
    config.Env = spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
    if (spec.workingDir) config.WorkingDir = spec.workingDir;
    if (spec.user) config.User = spec.user;
    const configRef = await put(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config,
          rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tar)}`] },
        }),
      ),
    );
    const manifestRef = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configRef },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerRef }],
        }),
      ),
    );
    const tag = tagOf(spec.ref);
    await writeFile(
      path.join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifestRef,
            annotations: { 'org.opencontainers.image.ref.name': tag, 'io.containerd.image.name': spec.ref },
          },
        ],
      }),
    );
    await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return { ref: spec.ref, tag, digest: manifestRef.digest, layoutDir: dir };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** An OCI archive (tar of the layout) for `ctr images import`. */
export async function writeImageArchive(image: BuiltImage, file: string): Promise<string> {
  await run('tar', ['-cf', file, '-C', image.layoutDir, 'oci-layout', 'index.json', 'blobs']);
  return file;
}

/** Where built binaries and images are cached per machine (beside the control plane binaries). */
export function imageCacheDir(): string {
  const root =
    process.env.TCR_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'tcr-assistant');
  return path.join(root, 'images');
}

const IMAGES_MODULE = path.join(REPO_ROOT, 'infra', 'images');

/**
 * A static binary of `infra/images/<name>` (CGO_ENABLED=0), built once per source content and cached.
 * Concurrent callers (the e2e setup and `npm start` side by side) each build into a temp file and rename.
 */
export async function buildStaticBinary(name: string): Promise<string> {
  const source = await readFile(path.join(IMAGES_MODULE, name, 'main.go'));
  const key = sha256(Buffer.concat([source, await readFile(path.join(IMAGES_MODULE, 'go.mod'))])).slice(
    0,
    16,
  );
  const out = path.join(imageCacheDir(), 'bin', `${name}-${key}`);
  if (existsSync(out)) return out;
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', tmp, `./${name}`], {
      cwd: IMAGES_MODULE,
      env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '' },
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`building infra/images/${name} with go failed: ${stderr.trim()}`);
  }
  await rename(tmp, out);
  return out;
}

/** The node's sandbox image: containerd's `sandbox_image`, imported before the kubelet starts. */
export const PAUSE_IMAGE = 'tcr.local/pause:v1';

/** An OCI archive of the pause image, cached per pause source. */
export async function pauseImageArchive(): Promise<string> {
  const binary = await buildStaticBinary('pause');
  const archive = path.join(imageCacheDir(), `pause-${path.basename(binary)}.tar`);
  if (existsSync(archive)) return archive;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tcr-image-'));
  try {
    const image = await writeImageLayout(dir, {
      ref: PAUSE_IMAGE,
      files: [{ path: '/pause', source: binary }],
      entrypoint: ['/pause'],
    });
    const tmp = `${archive}.${randomBytes(4).toString('hex')}.tmp`;
    await writeImageArchive(image, tmp);
    await rename(tmp, archive);
    return archive;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The test image: `infra/images/hello` as `/hello`, its entrypoint. Its arguments are printed (the pod's log);
 * `-sleep` keeps it Running; `-connect HOST:PORT` holds a connection. `label` becomes a file `/label` so that
 * different labels make different digests (a fresh image per test: nothing cached can pass for a pull).
 */
export async function writeHelloImage(dir: string, ref: string, label = ref): Promise<BuiltImage> {
  return writeImageLayout(dir, {
    ref,
    files: [
      { path: '/hello', source: await buildStaticBinary('hello') },
      { path: '/label', content: `${label}\n` },
    ],
    entrypoint: ['/hello'],
  });
}
