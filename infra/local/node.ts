// A real node for the local control plane: Debian's containerd + runc and a kubelet built from the same
// Kubernetes release, in a private mount + PID namespace, on loopback only. Decisions: docs/adr-008-real-node.md.
//
//   const cluster = await startControlPlane({ forNode: true });
//   const node = await startNode(cluster);                 // Node "127.0.0.1" Ready, taints cleared
//   await node.importImage(archive);                        // an OCI/docker archive into containerd (k8s.io)
//   await node.trustRegistry('127.0.0.1:5000', caFile);     // containerd pulls from that TLS registry
//   (await node.scanNetwork()).violations                   // sockets with a non-loopback peer: must be []
//   node.networkViolations()                                // everything the background sampler saw so far
//   await node.stop();                                      // kills the namespace, removes cgroups and files
//
// `node.info` is plain data (JSON): another process (a vitest worker) gets the same operations with
// `nodeClient(info)`. `probeNodeSupport()` says why a machine cannot host a node, for a clear skip.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { ControlPlane } from './control-plane.js';
import { findFreePort } from './free-port.js';
import { PAUSE_IMAGE, pauseImageArchive } from './images.js';
import { writeKubeconfig } from './kubeconfig.js';
import { describeSocket, type ObservedSocket, type SocketScan, scanSockets } from './node-network.js';
import { issueClientCert, issueLoopbackServingCert } from './pki.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The node's name and address: the kubelet registers as `127.0.0.1` (InternalIP 127.0.0.1). */
export const NODE_NAME = '127.0.0.1';

/**
 * What the kubelet rewrites at start (vm.overcommit_memory=1, kernel.panic=10, ...). These are not
 * namespaced: inside the node's mount namespace a private copy is bind-mounted over each file.
 */
export const SHIELDED_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
];

/** Plain data about a running node: enough for any process on this machine to use it. */
export interface NodeInfo {
  name: string;
  /** The node's temp folder (configs, logs, containerd socket, private /var/lib, /var/log copies). */
  dir: string;
  containerdSocket: string;
  /** containerd's registry `config_path`: one `<host:port>/hosts.toml` per trusted registry. */
  registryConfigDir: string;
  /** Host PID of the node namespace's init: `/proc/<it>/root/proc` is the node's own /proc. */
  initPid: number;
  /** The cgroup (under each hierarchy) that holds every pod: the kubelet's `cgroupRoot`. */
  cgroup: string;
  kubeletPort: number;
  /** JSON lines of non-loopback sockets the sampler saw. */
  violationsFile: string;
  logs: { kubelet: string; containerd: string; node: string };
}

export interface NodeClient {
  readonly info: NodeInfo;
  /** `ctr -n k8s.io images import` of an OCI or docker archive: the image is then present on the node. */
  importImage(archive: string): Promise<void>;
  /** containerd verifies this registry's TLS certificate with `caFile` (hosts.toml; read at each pull). */
  trustRegistry(host: string, caFile: string): Promise<void>;
  /** `ctr -n k8s.io ...`: for checks such as `images ls`. */
  ctr(args: string[]): Promise<string>;
  /** One scan of every socket of every process of the node (containers included). */
  scanNetwork(): Promise<SocketScan>;
  /** Violations the background sampler recorded (from the file: works from any process). */
  recordedViolations(): Promise<string[]>;
}

export interface LocalNode extends NodeClient {
  /** Node start to Ready (taints cleared), ms. */
  readonly startMs: number;
  /** Violations the background sampler recorded in this process. */
  networkViolations(): string[];
  stop(): Promise<void>;
}

export interface NodeOptions {
  startTimeoutMs?: number;
  /** Background network sampling period (default 1000 ms, ~20 ms of CPU each; 0 turns it off). */
  sampleEveryMs?: number;
  /** Kubelet verbosity (default 1). */
  kubeletVerbosity?: number;
}

export type NodeSupport = { ok: true } | { ok: false; reason: string };

const CNI_BIN_DIR = '/usr/lib/cni';

/**
 * Whether this machine can host a node, and if not why: root, Linux, mount + PID namespaces (unshare),
 * containerd/runc/ctr, the loopback CNI plugin, a cgroup hierarchy, the kubelet binary. `TCR_NODE=0` turns
 * the node off on purpose.
 */
export function probeNodeSupport(binDir?: string): NodeSupport {
  if (process.env.TCR_NODE === '0') return { ok: false, reason: 'turned off with TCR_NODE=0' };
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'needs root (mount and PID namespaces, cgroups)' };
  for (const bin of ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'unshare', 'pgrep']) {
    if (!onPath(bin)) {
      return {
        ok: false,
        reason: `${bin} is not installed (run \`npm run setup\`: Debian containerd, runc)`,
      };
    }
  }
  if (!existsSync(path.join(CNI_BIN_DIR, 'loopback'))) {
    return { ok: false, reason: `no ${CNI_BIN_DIR}/loopback (Debian containernetworking-plugins)` };
  }
  if (binDir && !existsSync(path.join(binDir, 'kubelet'))) {
    return { ok: false, reason: `no kubelet in ${binDir} (infra/scripts/build-control-plane.sh builds it)` };
  }
  if (cgroupMounts().length === 0) return { ok: false, reason: 'no cgroup hierarchy mounted' };
  try {
    execFileSync(
      'unshare',
      ['--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child', 'true'],
      { stdio: 'pipe', timeout: 10_000 },
    );
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    return { ok: false, reason: `cannot create mount + PID namespaces (unshare: ${stderr})` };
  }
  return { ok: true };
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some((dir) => existsSync(path.join(dir, bin)));
}

/** Mount points of cgroup v1 hierarchies and the v2 one (the node's cgroup is made and removed in each). */
function cgroupMounts(): string[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
      .map((f) => f[1] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Cgroups of nodes whose runner has died and whose guard could not clean up (it was killed with -9 too):
 * named `tcr-node-<runner pid>-...`, removed when that PID is gone and they hold no process.
 */
function sweepStaleCgroups(): void {
  for (const mount of cgroupMounts()) {
    let names: string[];
    try {
      names = readdirSync(mount).filter((n) => /^tcr-node-\d+-/.test(n));
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = Number(/^tcr-node-(\d+)-/.exec(name)?.[1]);
      if (pidAlive(pid)) continue;
      try {
        execFileSync('find', [path.join(mount, name), '-depth', '-type', 'd', '-exec', 'rmdir', '{}', '+'], {
          stdio: 'ignore',
        });
        console.error(`[node] removed stale cgroup ${mount}/${name} (its runner ${pid} is gone)`);
      } catch {
        // Still holds processes: not ours to kill.
      }
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Operations on a running node from any process (it only needs the node's NodeInfo). */
export function nodeClient(info: NodeInfo): NodeClient {
  const ctr = async (args: string[]) => {
    try {
      const { stdout } = await run('ctr', ['-a', info.containerdSocket, '-n', 'k8s.io', ...args], {
        maxBuffer: 16 << 20,
      });
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? String(error);
      throw new Error(`ctr ${args.slice(0, 2).join(' ')} failed: ${stderr.trim()}`);
    }
  };
  return {
    info,
    ctr,
    async importImage(archive) {
      await ctr(['images', 'import', archive]);
    },
    async trustRegistry(host, caFile) {
      const dir = path.join(info.registryConfigDir, host);
      await mkdir(dir, { recursive: true });
      await writeFile(
        path.join(dir, 'hosts.toml'),
        [
          `server = "https://${host}"`,
          '',
          `[host."https://${host}"]`,
          '  capabilities = ["pull", "resolve"]',
          `  ca = ${JSON.stringify(caFile)}`,
          '',
        ].join('\n'),
      );
    },
    scanNetwork: () => scanSockets(`/proc/${info.initPid}/root/proc`),
    async recordedViolations() {
      const text = await readFile(info.violationsFile, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean);
    },
  };
}

/**
 * Starts containerd and a kubelet as node `127.0.0.1` of `cluster` (started with `forNode`), and resolves
 * once the Node is Ready with no taints. Everything lives in a temp folder and a cgroup (in every
 * hierarchy) both named `tcr-node-<this pid>-<random>`, removed on stop, or by node-guard.sh / supervise.sh /
 * an exit hook if this process ends first.
 */
export async function startNode(cluster: ControlPlane, opts: NodeOptions = {}): Promise<LocalNode> {
  const started = Date.now();
  const support = probeNodeSupport(cluster.binDir);
  if (!support.ok) throw new Error(`this machine cannot host a node: ${support.reason}`);
  if (!cluster.forNode) {
    throw new Error(
      'startNode needs a control plane started with { forNode: true } (scheduler, controllers)',
    );
  }
  sweepStaleCgroups();
  const timeout = opts.startTimeoutMs ?? 90_000;
  const pause = await pauseImageArchive();
  // Named after this process: what a dead runner left behind is recognisable (sweepStaleCgroups, .ci/run).
  const dir = mkdtempSync(path.join(os.tmpdir(), `tcr-node-${process.pid}-`));
  const cgroup = path.basename(dir);
  let proc: ManagedProcess | undefined;
  let sampler: NodeJS.Timeout | undefined;
  // This process exiting without stop() (an uncaught error, process.exit): processes.ts's exit hook has
  // SIGKILLed the guard's process group, unshare included, so the namespace is dying; its cgroups are left
  // for us to remove, synchronously (an exit handler cannot wait otherwise).
  const onExit = () => {
    spawnSync('bash', [path.join(HERE, 'node-guard.sh'), '--cleanup', cgroup], { stdio: 'ignore' });
  };
  const removeAll = async () => {
    if (sampler) clearInterval(sampler);
    process.removeListener('exit', onExit);
    await proc?.stop('SIGTERM', 20_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const info: NodeInfo = {
      name: NODE_NAME,
      dir,
      containerdSocket: path.join(dir, 'containerd.sock'),
      registryConfigDir: path.join(dir, 'certs.d'),
      initPid: 0,
      cgroup,
      kubeletPort: await findFreePort(),
      violationsFile: path.join(dir, 'network-violations.jsonl'),
      logs: {
        kubelet: path.join(dir, 'log', 'kubelet.log'),
        containerd: path.join(dir, 'log', 'containerd.log'),
        node: path.join(dir, 'log', 'node.log'),
      },
    };
    await writeNodeFiles(cluster, info);
    for (const mount of cgroupMounts()) await mkdir(path.join(mount, cgroup), { recursive: true });

    proc = startProcess({
      name: `node[${cluster.name}]`,
      command: 'bash',
      args: [
        path.join(HERE, 'node-guard.sh'),
        dir,
        cgroup,
        '--',
        path.join(cluster.binDir, 'kubelet'),
        pause,
      ],
      logFile: path.join(dir, 'log', 'guard.log'),
      cleanupDir: dir,
      env: { ...process.env, TCR_KUBELET_V: String(opts.kubeletVerbosity ?? 1) },
    });
    process.on('exit', onExit);
    const node = proc;
    const tails = () =>
      ['node', 'containerd', 'kubelet']
        .map((k) => `--- ${k} ---\n${tail(info.logs[k as keyof NodeInfo['logs']], 15)}`)
        .join('\n');
    await waitUntilReady(
      node,
      async () => {
        const pid = Number(readFileSync(path.join(dir, 'init.pid'), 'utf8'));
        if (pid > 0) info.initPid = pid;
        return pid > 0;
      },
      10_000,
      'the node namespace',
    );
    try {
      await waitUntilReady(node, () => nodeReady(cluster), timeout, 'Node 127.0.0.1 Ready without taints');
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tails()}`);
    }

    const client = nodeClient(info);
    const seen = new Set<string>();
    const violations: string[] = [];
    const record = (list: ObservedSocket[]) => {
      for (const v of list) {
        const line = describeSocket(v);
        if (seen.has(line)) continue;
        seen.add(line);
        violations.push(line);
        console.error(`[node] NETWORK RULE VIOLATION: ${line}`);
        void appendFile(
          info.violationsFile,
          `${JSON.stringify({ at: new Date().toISOString(), socket: line })}\n`,
        );
      }
    };
    const sampleEvery = opts.sampleEveryMs ?? 1000;
    if (sampleEvery > 0) {
      let busy = false;
      sampler = setInterval(() => {
        if (busy) return;
        busy = true;
        client
          .scanNetwork()
          .then((scan) => record(scan.violations))
          .catch(() => {})
          .finally(() => {
            busy = false;
          });
      }, sampleEvery);
      sampler.unref();
    }
    let stopped = false;
    return {
      ...client,
      startMs: Date.now() - started,
      networkViolations: () => [...violations],
      async scanNetwork() {
        const scan = await client.scanNetwork();
        record(scan.violations);
        return scan;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await removeAll();
      },
    };
  } catch (error) {
    await removeAll();
    throw error;
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** Ready condition True and no taints (the node lifecycle controller has removed `not-ready`). */
async function nodeReady(cluster: ControlPlane): Promise<boolean> {
  const res = await cluster.get(`/api/v1/nodes/${NODE_NAME}`);
  if (res.status !== 200) return false;
  const node = JSON.parse(res.body) as {
    spec?: { taints?: unknown[] };
    status?: { conditions?: { type: string; status: string }[] };
  };
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  return Boolean(ready) && (node.spec?.taints ?? []).length === 0;
}

/** Certificates, kubeconfig, containerd and kubelet configuration, CNI, private copies of machine files. */
async function writeNodeFiles(cluster: ControlPlane, info: NodeInfo): Promise<void> {
  const { dir } = info;
  for (const sub of ['log', 'pki', 'cni', 'certs.d', 'var-lib', 'var-log', 'etc', 'sysctl']) {
    await mkdir(path.join(dir, sub), { recursive: true });
  }
  const pkiDir = path.join(dir, 'pki');
  // The kubelet's own identity (Node authorizer + NodeRestriction), never the admin's.
  const client = await issueClientCert(
    cluster.pki,
    pkiDir,
    'kubelet-client',
    `system:node:${NODE_NAME}`,
    'system:nodes',
  );
  const serving = await issueLoopbackServingCert(cluster.pki, pkiDir, 'kubelet-serving');
  await writeKubeconfig(path.join(dir, 'kubelet.kubeconfig'), {
    server: cluster.server,
    clusterName: cluster.name,
    caCertFile: cluster.pki.caCert,
    clientCertFile: client.cert,
    clientKeyFile: client.key,
  });

  // Loopback only: the nameserver is loopback (nothing answers: lookups fail fast), /etc/hosts keeps the
  // machine's loopback lines only. Both are private copies the node (and hostPath pods) may edit freely.
  await writeFile(
    path.join(dir, 'etc', 'resolv.conf'),
    'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n',
  );
  const hostLines = readFileSync('/etc/hosts', 'utf8')
    .split('\n')
    .filter((line) => /^\s*(127\.\d+\.\d+\.\d+|::1)\s/.test(line));
  if (!hostLines.some((l) => /\slocalhost(\s|$)/.test(l))) hostLines.unshift('127.0.0.1\tlocalhost');
  await writeFile(path.join(dir, 'etc', 'hosts'), `${hostLines.join('\n')}\n`);
  for (const key of SHIELDED_SYSCTLS) {
    const value = readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8');
    await writeFile(path.join(dir, 'sysctl', key), value);
  }
  await writeFile(path.join(dir, 'sysctls'), `${SHIELDED_SYSCTLS.join('\n')}\n`);

  // The only CNI network: loopback. A pod without hostNetwork gets a network namespace with `lo` alone.
  await writeFile(
    path.join(dir, 'cni', '10-loopback.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'loopback-only', plugins: [{ type: 'loopback' }] }),
  );

  await writeFile(
    path.join(dir, 'containerd.toml'),
    [
      'version = 2',
      // Inside the node's namespace /var/lib and /run are private folders (node-init.sh).
      'root = "/var/lib/containerd"',
      'state = "/run/containerd"',
      'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
      '[grpc]',
      `  address = ${JSON.stringify(info.containerdSocket)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  sandbox_image = "${PAUSE_IMAGE}"`,
      // The sandbox lacks CAP_SYS_RESOURCE: without this every pod sandbox fails in runc.
      '  restrict_oom_score_adj = true',
      '  disable_apparmor = true',
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    snapshotter = "overlayfs"',
      '    default_runtime_name = "runc"',
      '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
      '      runtime_type = "io.containerd.runc.v2"',
      '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      '        SystemdCgroup = false',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      `    bin_dir = "${CNI_BIN_DIR}"`,
      `    conf_dir = ${JSON.stringify(path.join(dir, 'cni'))}`,
      '  [plugins."io.containerd.grpc.v1.cri".registry]',
      `    config_path = ${JSON.stringify(info.registryConfigDir)}`,
      '',
    ].join('\n'),
  );

  await writeFile(
    path.join(dir, 'kubelet.yaml'),
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: '127.0.0.1',
      port: info.kubeletPort,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 0,
      tlsCertFile: serving.cert,
      tlsPrivateKeyFile: serving.key,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: cluster.pki.caCert },
      },
      authorization: { mode: 'Webhook' },
      containerRuntimeEndpoint: `unix://${info.containerdSocket}`,
      // Pods' cgroups under a root of this node's own, so that two nodes on one machine never meet.
      cgroupDriver: 'cgroupfs',
      cgroupRoot: `/${info.cgroup}`,
      failCgroupV1: false,
      failSwapOn: false,
      makeIPTablesUtilChains: false,
      hairpinMode: 'none',
      oomScoreAdj: 0,
      resolvConf: path.join(dir, 'etc', 'resolv.conf'),
      // Hard-coded default under /usr/libexec: keep it in the private /var/lib.
      volumePluginDir: '/var/lib/kubelet/volume-plugins',
      serializeImagePulls: false,
      // A shared CI machine's disk or memory must not evict test pods or garbage-collect their images.
      evictionHard: {
        'memory.available': '100Mi',
        'nodefs.available': '1%',
        'imagefs.available': '1%',
        'nodefs.inodesFree': '1%',
      },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      nodeStatusReportFrequency: '10s',
      shutdownGracePeriod: '0s',
      logging: { format: 'text' },
    }),
  );
}
