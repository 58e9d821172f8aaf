import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../zod-issues.js';

// Where the light transport (kube-client.ts) connects and how it authenticates, read from the in-cluster
// ServiceAccount or from a kubeconfig file. Only what a ServiceAccount-run component needs is supported:
// a server, its CA, a client certificate/key, a bearer token (or a token file re-read as it rotates) and
// impersonation. Anything else that changes how we authenticate (exec plugins, auth providers, basic auth,
// proxies, skipping TLS verification) is refused with an error naming it, rather than silently ignored.

export interface KubeconfigSource {
  /** Path to a kubeconfig file; when absent, the in-cluster ServiceAccount is used. */
  kubeconfig?: string | undefined;
  /** A context of that kubeconfig (default: its current context). */
  context?: string | undefined;
}

export interface KubeTarget {
  /** `https://host:port` (a path prefix is kept), no trailing slash. */
  server: string;
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  tlsServerName?: string | undefined;
  /** The bearer token to send now (a token file is re-read as the kubelet rotates it). */
  token?: (() => string) | undefined;
  /** Impersonation headers (kubeconfig `as`, `as-groups`, `as-uid`). */
  impersonate?: { user?: string | undefined; groups?: string[] | undefined; uid?: string | undefined };
  /** Where it came from, for error messages (never a credential). */
  describe: string;
}

/** The kubelet's projected ServiceAccount volume. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** client-go re-reads a token file at most once a minute; the kubelet rotates it well before it expires. */
const TOKEN_REREAD_MS = 60_000;

/** A token file, re-read when it is older than a minute in our cache and its mtime changed. */
export function tokenFileReader(file: string, now: () => number = Date.now): () => string {
  let cached: { token: string; readAt: number; mtimeMs: number } | undefined;
  return () => {
    const t = now();
    if (cached && t - cached.readAt < TOKEN_REREAD_MS) return cached.token;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch (error) {
      // Keep serving the last token while the kubelet swaps the file; fail only if there never was one.
      if (cached) return cached.token;
      throw new Error(
        `cannot read the token file ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
    if (!cached || mtimeMs !== cached.mtimeMs) {
      const token = readFileSync(file, 'utf8').trim();
      if (!token) throw new Error(`the token file ${file} is empty`);
      cached = { token, readAt: t, mtimeMs };
    } else cached.readAt = t;
    return cached.token;
  };
}

const hostPort = (host: string, port: string) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The in-cluster ServiceAccount: KUBERNETES_SERVICE_HOST/PORT, its token (re-read) and CA. */
export function inClusterTarget(
  env: NodeJS.ProcessEnv = process.env,
  dir: string = SERVICE_ACCOUNT_DIR,
): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new Error(
      'not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (set KUBECONFIG)',
    );
  const tokenFile = path.join(dir, 'token');
  const token = tokenFileReader(tokenFile);
  token(); // fail now, with the file's name, rather than at the first request
  let ca: Buffer;
  try {
    ca = readFileSync(path.join(dir, 'ca.crt'));
  } catch (error) {
    throw new Error(
      `cannot read the in-cluster CA ${path.join(dir, 'ca.crt')}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  return { server: `https://${hostPort(host, port)}`, ca, token, describe: 'in-cluster ServiceAccount' };
}

const Cluster = z.looseObject({
  server: z.string().min(1),
  'certificate-authority': z.string().optional(),
  'certificate-authority-data': z.string().optional(),
  'tls-server-name': z.string().optional(),
  'insecure-skip-tls-verify': z.boolean().optional(),
  'proxy-url': z.string().optional(),
  'disable-compression': z.boolean().optional(),
});
const User = z.looseObject({
  'client-certificate': z.string().optional(),
  'client-certificate-data': z.string().optional(),
  'client-key': z.string().optional(),
  'client-key-data': z.string().optional(),
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  as: z.string().optional(),
  'as-groups': z.array(z.string()).optional(),
  'as-uid': z.string().optional(),
});
const Context = z.looseObject({ cluster: z.string(), user: z.string().optional() });
export const Kubeconfig = z.looseObject({
  clusters: z.array(z.object({ name: z.string(), cluster: Cluster })).nullish(),
  users: z.array(z.object({ name: z.string(), user: User })).nullish(),
  contexts: z.array(z.object({ name: z.string(), context: Context })).nullish(),
  'current-context': z.string().optional(),
});
export type Kubeconfig = z.infer<typeof Kubeconfig>;

/** What the light transport refuses, by the kubeconfig key that asks for it. */
const UNSUPPORTED_USER: Record<string, string> = {
  exec: 'exec credential plugins',
  'auth-provider': 'auth providers',
  username: 'basic authentication',
  password: 'basic authentication',
  'as-user-extra': 'impersonated user extras',
};

/**
 * Reads a kubeconfig text into a target: the current context, or `context`. Relative file paths are read
 * from `baseDir` (the kubeconfig's folder, as kubectl does).
 */
export function targetFromKubeconfig(
  text: string,
  opts: { file: string; context?: string | undefined; readFile?: (file: string) => Buffer },
): KubeTarget {
  const read = opts.readFile ?? ((f: string) => readFileSync(f));
  const where = `kubeconfig ${opts.file}`;
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new Error(`${where} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = Kubeconfig.safeParse(raw);
  if (!parsed.success)
    throw new Error(`${where} is not a kubeconfig: ${describeIssues(parsed.error.issues)}`);
  const config = parsed.data;
  const contextName = opts.context ?? config['current-context'];
  const contexts = config.contexts ?? [];
  if (!contextName) throw new Error(`${where} has no current-context (name one; it has: ${names(contexts)})`);
  const context = contexts.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`${where} has no context "${contextName}" (it has: ${names(contexts)})`);
  const cluster = (config.clusters ?? []).find((c) => c.name === context.cluster)?.cluster;
  if (!cluster)
    throw new Error(`${where}: context "${contextName}" names cluster "${context.cluster}", which it lacks`);
  const user = context.user ? (config.users ?? []).find((u) => u.name === context.user)?.user : undefined;
  if (context.user && !user)
    throw new Error(`${where}: context "${contextName}" names user "${context.user}", which it lacks`);
  const label = `${where}, context "${contextName}"`;

  if (cluster['proxy-url']) throw new Error(`${label}: proxy-url is not supported by this client`);
  if (cluster['insecure-skip-tls-verify'])
    throw new Error(`${label}: insecure-skip-tls-verify is not supported (give the cluster's CA instead)`);
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new Error(`${label}: server "${cluster.server}" is not a URL`);
  }
  if (server.protocol !== 'https:')
    throw new Error(`${label}: server must be https:// (got ${server.protocol}//${server.host})`);
  for (const [key, what] of Object.entries(UNSUPPORTED_USER))
    if (user && user[key] !== undefined)
      throw new Error(
        `${label}: user "${context.user}" uses ${key} (${what}), which this client does not support`,
      );

  const resolve = (f: string) => path.resolve(path.dirname(opts.file), f);
  const material = (data: string | undefined, fileKey: string, file: string | undefined) => {
    if (data !== undefined) return Buffer.from(data, 'base64');
    if (file === undefined) return undefined;
    try {
      return read(resolve(file));
    } catch (error) {
      throw new Error(
        `${label}: cannot read ${fileKey} ${resolve(file)}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
  };
  const ca = material(
    cluster['certificate-authority-data'],
    'certificate-authority',
    cluster['certificate-authority'],
  );
  const cert = material(
    user?.['client-certificate-data'],
    'client-certificate',
    user?.['client-certificate'],
  );
  const key = material(user?.['client-key-data'], 'client-key', user?.['client-key']);
  if ((cert === undefined) !== (key === undefined))
    throw new Error(
      `${label}: user "${context.user}" has a client certificate without its key, or a key without its certificate`,
    );
  let token: (() => string) | undefined;
  if (user?.token) {
    const value = user.token;
    token = () => value;
  } else if (user?.tokenFile) token = tokenFileReader(resolve(user.tokenFile));
  const impersonate =
    user?.as || user?.['as-groups'] || user?.['as-uid']
      ? { user: user.as, groups: user['as-groups'], uid: user['as-uid'] }
      : undefined;
  return {
    server: server.href.replace(/\/$/, ''),
    ca,
    cert,
    key,
    tlsServerName: cluster['tls-server-name'],
    token,
    impersonate,
    describe: label,
  };
}

function names(list: { name: string }[]): string {
  return list.map((c) => c.name).join(', ') || 'none';
}

/** A kubeconfig file (optionally a named context), or the in-cluster ServiceAccount when none is given. */
export function loadKubeTarget(source: KubeconfigSource = {}): KubeTarget {
  if (!source.kubeconfig) return inClusterTarget();
  let text: string;
  try {
    text = readFileSync(source.kubeconfig, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read kubeconfig ${source.kubeconfig}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  return targetFromKubeconfig(text, { file: source.kubeconfig, context: source.context });
}
