import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from './free-port.js';
import { type BuiltImage, writeImageLayout } from './images.js';
import { type CaFiles, issueLoopbackServingCert, openssl } from './pki.js';
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
  /** `https` when started with `tls`, else `http`. */
  scheme: 'http' | 'https';
  /** With `tls`: the CA that signed the registry's certificate (containerd's hosts.toml `ca`). */
  caFile?: string;
  /** With `tls`: a folder holding that CA as `ca.crt` (skopeo's `--cert-dir`). */
  certDir?: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startRegistry(opts: {
  realm: string;
  service: string;
  issuer: string;
  signer: TokenSigner;
  timeoutMs?: number;
  /** Serve TLS, as TCR does, with a certificate for 127.0.0.1 from this PKI's CA (the run's). */
  tls?: { pki: CaFiles };
}): Promise<LocalRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-registry-'));
  const port = await findFreePort();
  let tls: { certFile: string; keyFile: string; caFile: string; certDir: string } | undefined;
  if (opts.tls) {
    const serving = await issueLoopbackServingCert(opts.tls.pki, dir, 'registry');
    const certDir = path.join(dir, 'certs');
    await mkdir(certDir);
    await copyFile(opts.tls.pki.caCert, path.join(certDir, 'ca.crt'));
    tls = {
      certFile: serving.cert,
      keyFile: serving.key,
      caFile: path.join(certDir, 'ca.crt'),
      certDir,
    };
  }
  const bundle = path.join(dir, 'token-signer.crt');
  await writeFile(bundle, opts.signer.certPem);
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: info }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} } }`,
      `http: { addr: "127.0.0.1:${port}", secret: "local-only"${
        tls
          ? `, tls: { certificate: ${JSON.stringify(tls.certFile)}, key: ${JSON.stringify(tls.keyFile)} }`
          : ''
      } }`,
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
  const scheme = opts.tls ? 'https' : 'http';
  await waitUntilReady(
    proc,
    () =>
      new Promise<boolean>((resolve) => {
        (opts.tls ? https : http)
          .get(`${scheme}://127.0.0.1:${port}/v2/`, { rejectUnauthorized: false }, (res) => {
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
    scheme,
    ...(tls ? { caFile: tls.caFile, certDir: tls.certDir } : {}),
    dir,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A one-layer OCI image layout (what `skopeo copy oci:DIR:TAG` reads) with one file, hello.txt. Returns the
 * manifest digest.
 */
export async function writeOciImage(dir: string, tag: string, content: string): Promise<string> {
  const image = await writeImageLayout(dir, {
    ref: `local/hello:${tag}`,
    files: [{ path: '/hello.txt', content }],
  });
  return image.digest;
}

/**
 * Pushes an OCI layout (e.g. from `writeHelloImage`) to `registry` as `repository:tag` with skopeo,
 * authenticating with `creds` (a TCR instance token: username and token) through the token service.
 */
export async function pushImage(
  image: BuiltImage,
  registry: LocalRegistry,
  reference: string,
  creds: { username: string; token: string },
): Promise<string> {
  const tlsArgs = registry.certDir ? [`--dest-cert-dir=${registry.certDir}`] : ['--dest-tls-verify=false'];
  try {
    await run('skopeo', [
      'copy',
      '--quiet',
      ...tlsArgs,
      '--dest-creds',
      `${creds.username}:${creds.token}`,
      `oci:${image.layoutDir}:${image.tag}`,
      `docker://${registry.host}/${reference}`,
    ]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    // skopeo may echo the request; never the credential.
    throw new Error(
      `pushing ${reference} to ${registry.host} failed: ${stderr.replaceAll(creds.token, '***').trim()}`,
    );
  }
  return `${registry.host}/${reference}`;
}
