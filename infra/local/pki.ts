import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A CA that can sign: enough to issue a certificate from the run's PKI. */
export type CaFiles = Pick<Pki, 'caCert' | 'caKey'>;

export interface Pki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
}

/** Runs openssl; a failure says which subcommand and what openssl printed. */
export async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}

/** A certificate (and its new P-256 key) signed by a CA, written as `<dir>/<name>.crt|.key`. */
export async function issueCert(
  ca: { cert: string; key: string },
  dir: string,
  name: string,
  subject: string,
  extensions: string,
  days = 7,
): Promise<{ cert: string; key: string }> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
  await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr], dir);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      // A random serial rather than a shared serial file: several issuers may use one CA at once.
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  return { cert, key };
}

/** A client certificate (`CN=cn`, `O=org`) signed by the run's CA, e.g. the kubelet's `system:node:...`. */
export function issueClientCert(pki: CaFiles, dir: string, name: string, cn: string, org?: string) {
  return issueCert(
    { cert: pki.caCert, key: pki.caKey },
    dir,
    name,
    `${org ? `/O=${org}` : ''}/CN=${cn}`,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      '',
    ].join('\n'),
  );
}

/** A serving certificate for loopback (127.0.0.1, localhost) signed by the run's CA: kubelet, registry. */
export function issueLoopbackServingCert(pki: CaFiles, dir: string, name: string) {
  return issueCert(
    { cert: pki.caCert, key: pki.caKey },
    dir,
    name,
    `/CN=${name}`,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  );
}

/**
 * A throw-away PKI for one local control plane: a CA, the API server's serving certificate for
 * 127.0.0.1/localhost, an admin client certificate in system:masters, and the ServiceAccount signing keys.
 */
export async function createPki(dir: string): Promise<Pki> {
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKey,
      '-subj',
      '/CN=tcr-assistant-local-ca',
      '-days',
      '7',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-out',
      caCert,
    ],
    dir,
  );
  const ca = { cert: caCert, key: caKey };
  const serving = await issueCert(
    ca,
    dir,
    'apiserver',
    '/CN=kube-apiserver',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.1.0.1',
      '',
    ].join('\n'),
  );
  const admin = await issueCert(
    ca,
    dir,
    'admin',
    '/O=system:masters/CN=tcr-assistant-admin',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      '',
    ].join('\n'),
  );
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serviceAccountPublicKey = path.join(dir, 'sa.pub');
  const serviceAccountPrivateKey = path.join(dir, 'sa.key');
  await writeFile(serviceAccountPublicKey, sa.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(serviceAccountPrivateKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  return {
    caCert,
    caKey,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    serviceAccountPublicKey,
    serviceAccountPrivateKey,
  };
}
