// The Dockerfile's base image (`node:<version>-bookworm-slim` for everyone else), assembled offline from this
// machine's own Node 20 package as a one-layer OCI image layout, for BuildKit's `oci-layout://` named context.
// It provides what the Dockerfile relies on from the official image, at the same paths: node and npm in
// /usr/local/bin, a POSIX shell at /bin/sh, /usr/bin/env, glibc and the C++ runtime node links against, root and node
// users, /tmp. Reproducible (writeImageLayout: sorted tar, fixed mtimes, gzip without a name or time), so the
// same packages always give the same digest; cached by the packages' versions.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { type ImageFile, writeImageLayout } from '../local/images.js';

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

/** The versions of the packages the base is made of, one line each (the cache key). */
export async function basePackageVersions(): Promise<string> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format
  const { stdout } = await run('dpkg-query', ['-W', '-f', '${Package}=${Version}\n', ...PACKAGES]);
  return stdout.trim();
}

/** Every regular file under `dir` (symlinks such as node_modules/.bin links are not needed), with its mode. */
async function filesUnder(dir: string, into: string): Promise<ImageFile[]> {
  const out: ImageFile[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const source = path.join(entry.parentPath, entry.name);
    const mode = (await stat(source)).mode & 0o777;
    out.push({ path: path.join(into, path.relative(dir, source)), source, mode });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Returns the cached layout for this machine's packages, assembling it first if needed (one layer, written
 * by infra/local/images.ts like the node's other images). `cacheDir` holds one folder per package set.
 */
export async function ensureNodeBase(
  cacheDir: string,
  opts: { log?: (m: string) => void } = {},
): Promise<NodeBase> {
  const versions = await basePackageVersions();
  const nodeVersion = (await run(NODE, ['--version'])).stdout.trim().replace(/^v/, '');
  const key = createHash('sha256').update(versions).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir, `node-${nodeVersion}-${key}`);
  try {
    return {
      dir,
      manifestDigest: (await readFile(path.join(dir, 'manifest-digest'), 'utf8')).trim(),
      nodeVersion,
    };
  } catch {}
  opts.log?.(`assembling the Node ${nodeVersion} base image from ${versions.replace(/\n/g, ', ')}`);
  const files: ImageFile[] = [
    { path: '/usr/local/bin/node', source: await realpath(NODE), mode: 0o755 },
    { path: '/bin/sh', source: await realpath(SHELL), mode: 0o755 },
    { path: '/usr/bin/env', source: await realpath(ENV), mode: 0o755 },
    // This Node build reads the system CA bundle besides its own (and warns at every start without it).
    { path: '/etc/ssl/certs/ca-certificates.crt', source: await realpath(CA_BUNDLE), mode: 0o644 },
  ];
  const libs = new Set([
    ...(await sharedLibraries(NODE)),
    ...(await sharedLibraries(SHELL)),
    ...(await sharedLibraries(ENV)),
  ]);
  for (const lib of libs) files.push({ path: lib, source: await realpath(lib), mode: 0o755 });
  // npm where the official image has it (the Dockerfile's build stage runs `npm ci`); the launchers are
  // scripts rather than the official image's symlinks.
  files.push(...(await filesUnder(NPM_DIR, '/usr/local/lib/node_modules/npm')));
  for (const [bin, cli] of [
    ['npm', 'npm-cli.js'],
    ['npx', 'npx-cli.js'],
  ] as const) {
    files.push({
      path: `/usr/local/bin/${bin}`,
      content: `#!/bin/sh\nexec /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/${cli} "$@"\n`,
      mode: 0o755,
    });
  }
  files.push(
    {
      path: '/etc/passwd',
      content:
        'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/nonexistent:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    },
    { path: '/etc/group', content: 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' },
    // Without it glibc asks DNS before /etc/hosts.
    { path: '/etc/nsswitch.conf', content: 'passwd: files\ngroup: files\nhosts: files dns\n' },
    // npm (as root, during the build) needs a home and a temp folder.
    { path: '/root/.keep', content: '' },
    { path: '/tmp/.keep', content: '' },
  );
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const image = await writeImageLayout(tmp, {
    ref: `tcr.local/node-base:${nodeVersion}`,
    files,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `NODE_VERSION=${nodeVersion}`],
    cmd: ['node'],
  });
  await writeFile(path.join(tmp, 'manifest-digest'), `${image.digest}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  opts.log?.(`base image ${image.digest}`);
  return { dir, manifestDigest: image.digest, nodeVersion };
}
