// The Dockerfile's base image (`node:<version>-bookworm-slim` for everyone else), assembled offline from this
// machine's own Node 20 package as a one-layer OCI image layout, for BuildKit's `oci-layout://` named context.
// It provides what the Dockerfile relies on from the official image, at the same paths: node and npm in
// /usr/local/bin, a POSIX shell at /bin/sh, /usr/bin/env, glibc and the C++ runtime node links against, root and node
// users, /tmp. Built deterministically (sorted tar, fixed mtimes, gzip without a name or time), so the same
// packages always give the same digest; cached by the packages' versions.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NodeBase {
  /** The OCI image layout folder (for `buildctl --oci-layout NAME=<dir>`). */
  dir: string;
  /** Digest of the image manifest in that layout. */
  manifestDigest: string;
  nodeVersion: string;
}

/** Debian packages whose files make up the base; their versions key the cache. */
const PACKAGES = ['nodejs', 'dash', 'coreutils', 'ca-certificates', 'libc6', 'libstdc++6', 'libgcc-s1'];
const NODE = '/usr/bin/node';
const NPM_DIR = '/usr/lib/node_modules/npm';
const SHELL = '/usr/bin/dash';
/** npm's scripts start with `#!/usr/bin/env node`. */
const ENV = '/usr/bin/env';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    // "libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  if (libs.length === 0) throw new Error(`ldd found no shared libraries for ${binary}`);
  return libs;
}

async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

async function writeBlob(
  layout: string,
  content: Buffer | string,
): Promise<{ digest: string; size: number }> {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(path.join(layout, 'blobs', 'sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** The versions of the packages the base is made of, one line each (the cache key). */
export async function basePackageVersions(): Promise<string> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format
  const { stdout } = await run('dpkg-query', ['-W', '-f', '${Package}=${Version}\n', ...PACKAGES]);
  return stdout.trim();
}

/**
 * Returns the cached layout for this machine's packages, assembling it first if needed.
 * `cacheDir` holds one folder per package set.
 */
export async function ensureNodeBase(
  cacheDir: string,
  opts: { log?: (m: string) => void } = {},
): Promise<NodeBase> {
  const versions = await basePackageVersions();
  const nodeVersion = (await run(NODE, ['--version'])).stdout.trim().replace(/^v/, '');
  const key = createHash('sha256').update(versions).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir, `node-${nodeVersion}-${key}`);
  const done = path.join(dir, 'manifest-digest');
  try {
    return { dir, manifestDigest: (await readFile(done, 'utf8')).trim(), nodeVersion };
  } catch {}
  opts.log?.(`assembling the Node ${nodeVersion} base image from ${versions.replace(/\n/g, ', ')}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const rootfs = path.join(tmp, 'rootfs');
  const layout = path.join(tmp, 'layout');
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });

  const put = async (from: string, to: string, mode: number) => {
    const target = path.join(rootfs, to);
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(await realpath(from), target);
    await chmod(target, mode);
  };
  await put(NODE, 'usr/local/bin/node', 0o755);
  await put(SHELL, 'bin/sh', 0o755);
  await put(ENV, 'usr/bin/env', 0o755);
  // This Node build reads the system CA bundle besides its own (and warns at every start without it).
  await put(CA_BUNDLE, 'etc/ssl/certs/ca-certificates.crt', 0o644);
  for (const lib of new Set([
    ...(await sharedLibraries(NODE)),
    ...(await sharedLibraries(SHELL)),
    ...(await sharedLibraries(ENV)),
  ])) {
    await put(lib, lib.slice(1), 0o755);
  }
  // npm, where the official image has it (the Dockerfile's build stage runs `npm ci`).
  await mkdir(path.join(rootfs, 'usr/local/lib/node_modules'), { recursive: true });
  await run('cp', ['-a', NPM_DIR, path.join(rootfs, 'usr/local/lib/node_modules/npm')]);
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/nonexistent:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  );
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  // Without it glibc asks DNS before /etc/hosts.
  await writeFile(path.join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  for (const [d, mode] of [
    ['tmp', 0o1777],
    ['root', 0o700],
  ] as const) {
    await mkdir(path.join(rootfs, d), { recursive: true });
    await chmod(path.join(rootfs, d), mode);
  }

  // The layer: a reproducible tar, then gzip -n (no name, no time).
  const tar = path.join(tmp, 'layer.tar');
  await run('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '-C',
    rootfs,
    '-cf',
    tar,
    '.',
  ]);
  const diffId = `sha256:${await sha256File(tar)}`;
  await run('gzip', ['-n', '-6', tar]);
  const layer = await writeBlob(layout, await readFile(`${tar}.gz`));
  await rm(`${tar}.gz`);

  const config = await writeBlob(
    layout,
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: {
        Env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          `NODE_VERSION=${nodeVersion}`,
        ],
        Cmd: ['node'],
      },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [
        {
          created: '1970-01-01T00:00:00Z',
          created_by: `tcr-assistant node-base from ${versions.replace(/\n/g, ' ')}`,
        },
      ],
    }),
  );
  const manifest = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': `${nodeVersion}-local` },
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    }),
  );
  await writeFile(path.join(layout, 'manifest-digest'), `${manifest.digest}\n`);
  await rm(rootfs, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  await rename(layout, dir);
  await rm(tmp, { recursive: true, force: true });
  opts.log?.(`base image ${manifest.digest} (${(layer.size / 1048576).toFixed(1)} MiB compressed)`);
  return { dir, manifestDigest: manifest.digest, nodeVersion };
}
