import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from './free-port.js';
import { openssl } from './pki.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

const run = promisify(execFile);

// Debian's docker-registry (distribution 2.8) with bearer-token auth, as a TCR instance works: the client
// presents a username and an instance token (the pull Secret's credential) to the token service, which the
// Tencent emulator plays, and gets a short-lived JWT the registry verifies against the signing certificate.

/** The key pair the token service signs with; the registry trusts its self-signed certificate. */
export interface TokenSigner {
  keyPem: string;
  certPem: string;
  /** Base64 DER of the certificate, for the JWT `x5c` header. */
  certDerBase64: string;
}

export async function createTokenSigner(dir: string): Promise<TokenSigner> {
  const key = path.join(dir, 'token-signer.key');
  const cert = path.join(dir, 'token-signer.crt');
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=tcr-emulator-token-signer',
    ],
    dir,
  );
  const certPem = await readFile(cert, 'utf8');
  const der = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { keyPem: await readFile(key, 'utf8'), certPem, certDerBase64: der };
}

export interface LocalRegistry {
  /** `127.0.0.1:PORT`: the server of a pull Secret, and the host of image references. */
  host: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startRegistry(opts: {
  realm: string;
  service: string;
  issuer: string;
  signer: TokenSigner;
  timeoutMs?: number;
}): Promise<LocalRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-registry-'));
  const port = await findFreePort();
  const bundle = path.join(dir, 'token-signer.crt');
  await writeFile(bundle, opts.signer.certPem);
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: info }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} } }`,
      `http: { addr: "127.0.0.1:${port}", secret: "local-only" }`,
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(opts.realm)}`,
      `    service: ${JSON.stringify(opts.service)}`,
      `    issuer: ${JSON.stringify(opts.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(bundle)}`,
    ].join('\n'),
  );
  let proc: ManagedProcess;
  try {
    proc = startProcess({
      name: 'docker-registry',
      command: 'docker-registry',
      args: ['serve', config],
      logFile: path.join(dir, 'registry.log'),
      cleanupDir: dir,
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  // Up when /v2/ answers (401: it wants a token).
  await waitUntilReady(
    proc,
    () =>
      new Promise<boolean>((resolve) => {
        http
          .get(`http://127.0.0.1:${port}/v2/`, (res) => {
            res.resume();
            resolve(res.statusCode === 401);
          })
          .on('error', () => resolve(false));
      }),
    opts.timeoutMs ?? 20_000,
    'docker-registry /v2/',
  );
  return {
    host: `127.0.0.1:${port}`,
    dir,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A one-layer OCI image layout (what `skopeo copy oci:DIR:TAG` reads), built by hand: a tar with one file,
 * its config and manifest. Returns the manifest digest.
 */
export async function writeOciImage(dir: string, tag: string, content: string): Promise<string> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const staging = path.join(dir, 'staging');
  await mkdir(staging, { recursive: true });
  await writeFile(path.join(staging, 'hello.txt'), content);
  const tarPath = path.join(dir, 'layer.tar');
  await run('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '-cf',
    tarPath,
    '-C',
    staging,
    'hello.txt',
  ]);
  const tar = await readFile(tarPath);
  await run('gzip', ['-n', '-f', tarPath]);
  const layer = await readFile(`${tarPath}.gz`);
  const put = async (data: Buffer) => {
    const digest = sha256(data);
    await writeFile(path.join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const layerRef = await put(layer);
  const configRef = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tar)}`] },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configRef },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerRef }],
    }),
  );
  const manifestRef = await put(manifest);
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifestRef,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return manifestRef.digest;
}
