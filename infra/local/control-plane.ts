import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ensureControlPlaneBinaries } from './binaries.js';
import { findFreePort } from './free-port.js';
import { writeKubeconfig } from './kubeconfig.js';
import { createPki, issueClientCert, type Pki } from './pki.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

export interface ControlPlaneOptions {
  /** Names the cluster in its kubeconfig and temp folder; also the cluster id that jobs carry. */
  name?: string;
  binDir?: string;
  /** How often the API server compacts etcd (default 5m): shorter lets tests provoke 410 Gone. */
  etcdCompactionInterval?: string;
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. `--watch-cache=false` so that old watches really get 410 Gone. */
  extraApiserverArgs?: string[];
  /**
   * kube-controller-manager's client rate (default 20/s, burst 30, as in real clusters): it creates each
   * namespace's `default` ServiceAccount, so it bounds how fast namespaces can be served at all.
   */
  controllerManagerQps?: number;
  /**
   * Ready for a node (infra/local/node.ts): the controllers a workload needs (deployment, replicaset,
   * daemonset, statefulset, job, node lifecycle so that the not-ready taint clears, the root CA publisher for
   * projected ServiceAccount tokens, pod GC, endpoints) in a second controller-manager, and kube-scheduler.
   * Off by default: the benchmark needs none of it.
   */
  forNode?: boolean;
}

export interface ControlPlane {
  readonly name: string;
  readonly dir: string;
  readonly server: string;
  /** Admin kubeconfig: client certificate in system:masters. */
  readonly kubeconfigPath: string;
  readonly pki: Pki;
  readonly ports: {
    etcd: number;
    apiserver: number;
    controllerManager: number;
    workloadControllerManager?: number;
    scheduler?: number;
  };
  /** Where kube-apiserver & co. come from: the kubelet is there too. */
  readonly binDir: string;
  /** True when started with `forNode` (workload controllers and kube-scheduler running). */
  readonly forNode: boolean;
  /** etcd's client URL (its HTTP gateway serves /v3/kv/range, /v3/kv/compaction, ...). */
  readonly etcdUrl: string;
  /** A kubeconfig that authenticates as admin but is authorized as `user` (impersonation). */
  kubeconfigAs(user: string): Promise<string>;
  /** Raw HTTPS GET as admin (e.g. /metrics, /readyz). */
  get(pathname: string): Promise<{ status: number; body: string }>;
  /** Stops kube-apiserver only (simulates a cluster that is down); `startApiserver` brings it back. */
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  stop(): Promise<void>;
}

const CONTROLLERS = ['serviceaccount-controller', 'namespace-controller', 'garbage-collector-controller'];
const NODE_CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'daemonset-controller',
  'statefulset-controller',
  'job-controller',
  'node-lifecycle-controller',
  'root-ca-certificate-publisher-controller',
  'pod-garbage-collector-controller',
  'clusterrole-aggregation-controller',
  'endpoints-controller',
  'endpointslice-controller',
];

/**
 * Service ClusterIPs on loopback: nothing routes them here (no kube-proxy), and a client that forgets its
 * explicit API server address connects to 127.1.0.1 instead of a 10.x address the network rule forbids.
 */
export const SERVICE_CIDR = '127.1.0.0/24';

/**
 * Starts etcd + kube-apiserver + kube-controller-manager on loopback with freshly generated certificates
 * and run-time ports. Everything lives in one temp folder, removed on stop (or by the supervisor if this
 * process dies first).
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const name = opts.name ?? 'local';
  const binDir = opts.binDir ?? (await ensureControlPlaneBinaries());
  const timeout = opts.startTimeoutMs ?? 90_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), `tcr-cp-${name}-`));
  const procs: ManagedProcess[] = [];
  const stopAll = async () => {
    for (const p of [...procs].reverse()) await p.stop();
    procs.length = 0;
  };
  try {
    const pki = await createPki(dir);
    const ports = {
      etcd: await findFreePort(),
      apiserver: await findFreePort(),
      controllerManager: await findFreePort(),
    };
    const server = `https://127.0.0.1:${ports.apiserver}`;
    const kubeconfigPath = await writeKubeconfig(path.join(dir, 'admin.kubeconfig'), {
      server,
      clusterName: name,
      caCertFile: pki.caCert,
      clientCertFile: pki.adminCert,
      clientKeyFile: pki.adminKey,
    });
    const get = (pathname: string) => httpsGet(server, pathname, pki);

    const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
    const etcd = startProcess({
      name: `etcd[${name}]`,
      command: path.join(binDir, 'etcd'),
      args: [
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        '--listen-peer-urls=http://127.0.0.1:0',
        '--unsafe-no-fsync=true',
        '--log-level=warn',
        '--quota-backend-bytes=8589934592',
      ],
      logFile: path.join(dir, 'etcd.log'),
      cleanupDir: dir,
    });
    procs.push(etcd);
    await waitUntilReady(
      etcd,
      async () => (await plainGet(`${etcdUrl}/health`)).includes('true'),
      timeout,
      'etcd healthy',
    );

    mkdirSync(path.join(dir, 'apiserver'), { recursive: true });
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${path.join(dir, 'apiserver')}`,
      `--secure-port=${ports.apiserver}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // Kubelets authenticate as system:node:<name> and get exactly what the Node authorizer and
      // NodeRestriction allow; everyone else goes through RBAC. The ServiceAccount plugin stays on.
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--client-ca-file=${pki.caCert}`,
      // Logs and exec reach the kubelet over TLS it proves with a certificate from the same CA.
      `--kubelet-certificate-authority=${pki.caCert}`,
      `--kubelet-client-certificate=${pki.adminCert}`,
      `--kubelet-client-key=${pki.adminKey}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${pki.serviceAccountPrivateKey}`,
      `--etcd-compaction-interval=${opts.etcdCompactionInterval ?? '5m'}`,
      '--allow-privileged=true',
      '--profiling=false',
      '--v=0',
      ...(opts.extraApiserverArgs ?? []),
    ];
    let apiserver: ManagedProcess | undefined;
    const startApiserver = async () => {
      apiserver = startProcess({
        name: `kube-apiserver[${name}]`,
        command: path.join(binDir, 'kube-apiserver'),
        args: apiserverArgs,
        logFile: path.join(dir, 'kube-apiserver.log'),
        cleanupDir: dir,
      });
      procs.splice(1, 0, apiserver);
      await waitUntilReady(
        apiserver,
        async () => (await get('/readyz')).status === 200,
        timeout,
        'kube-apiserver /readyz',
      );
    };
    const stopApiserver = async () => {
      if (!apiserver) return;
      await apiserver.stop();
      procs.splice(procs.indexOf(apiserver), 1);
      apiserver = undefined;
    };
    await startApiserver();

    // Two controller-managers, each with its own client rate (as if leader of its own controllers): the
    // workload controllers' writes (a kube-root-ca.crt ConfigMap per namespace, pods, ...) must not slow
    // the serviceaccount controller, whose rate is what tests and the benchmark see.
    const startControllerManager = (suffix: string, controllers: string[], port: number, extra: string[]) => {
      const certDir = path.join(dir, `controller-manager${suffix}`);
      mkdirSync(certDir, { recursive: true });
      const proc = startProcess({
        name: `kube-controller-manager${suffix}[${name}]`,
        command: path.join(binDir, 'kube-controller-manager'),
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          '--leader-elect=false',
          `--controllers=${controllers.join(',')}`,
          ...extra,
          `--secure-port=${port}`,
          '--bind-address=127.0.0.1',
          `--cert-dir=${certDir}`,
          '--v=0',
        ],
        logFile: path.join(dir, `kube-controller-manager${suffix}.log`),
        cleanupDir: dir,
      });
      procs.push(proc);
      return proc;
    };
    const kcm = startControllerManager(
      '',
      CONTROLLERS,
      ports.controllerManager,
      opts.controllerManagerQps
        ? [`--kube-api-qps=${opts.controllerManagerQps}`, `--kube-api-burst=${opts.controllerManagerQps * 2}`]
        : [],
    );
    if (opts.forNode) {
      const port = await findFreePort();
      Object.assign(ports, { workloadControllerManager: port });
      startControllerManager('-workloads', NODE_CONTROLLERS, port, ['--node-monitor-period=2s']);
    }
    // Ready when the serviceaccount controller has given the `default` namespace its ServiceAccount.
    await waitUntilReady(
      kcm,
      async () => (await get('/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
      timeout,
      'the default ServiceAccount in namespace default',
    );

    if (opts.forNode) {
      const scheduler = await startScheduler({ name, dir, server, pki, binDir, procs });
      Object.assign(ports, { scheduler: scheduler.port });
      await waitUntilReady(
        scheduler.proc,
        async () => (await plainGet(`https://127.0.0.1:${scheduler.port}/healthz`, true)) === 'ok',
        timeout,
        'kube-scheduler /healthz',
      );
    }

    let stopped = false;
    return {
      name,
      dir,
      server,
      kubeconfigPath,
      pki,
      ports,
      binDir,
      forNode: opts.forNode ?? false,
      etcdUrl,
      get,
      stopApiserver,
      startApiserver,
      async kubeconfigAs(user: string) {
        const file = path.join(dir, `as-${user.replaceAll(/[^a-zA-Z0-9.-]/g, '_')}.kubeconfig`);
        return writeKubeconfig(file, {
          server,
          clusterName: name,
          caCertFile: pki.caCert,
          clientCertFile: pki.adminCert,
          clientKeyFile: pki.adminKey,
          impersonate: user,
        });
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function httpsGet(server: string, pathname: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${server}${pathname}`,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${pathname} timed out`)));
    req.on('error', reject);
  });
}

/** kube-scheduler with a client certificate of its own (system:kube-scheduler: RBAC has its roles). */
async function startScheduler(cp: {
  name: string;
  dir: string;
  server: string;
  pki: Pki;
  binDir: string;
  procs: ManagedProcess[];
}): Promise<{ proc: ManagedProcess; port: number }> {
  const dir = path.join(cp.dir, 'scheduler');
  mkdirSync(dir, { recursive: true });
  const cert = await issueClientCert(cp.pki, dir, 'scheduler', 'system:kube-scheduler');
  const kubeconfig = await writeKubeconfig(path.join(dir, 'scheduler.kubeconfig'), {
    server: cp.server,
    clusterName: cp.name,
    caCertFile: cp.pki.caCert,
    clientCertFile: cert.cert,
    clientKeyFile: cert.key,
  });
  const port = await findFreePort();
  const proc = startProcess({
    name: `kube-scheduler[${cp.name}]`,
    command: path.join(cp.binDir, 'kube-scheduler'),
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      `--cert-dir=${dir}`,
      '--v=0',
    ],
    logFile: path.join(cp.dir, 'kube-scheduler.log'),
    cleanupDir: cp.dir,
  });
  cp.procs.push(proc);
  return { proc, port };
}

async function plainGet(url: string, insecure = false): Promise<string> {
  if (!insecure) {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.text();
  }
  // The scheduler's self-signed serving certificate: only its health is asked, on loopback.
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
