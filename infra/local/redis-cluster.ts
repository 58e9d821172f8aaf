import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from './free-port.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

// A real Redis Cluster on loopback: Debian's redis-server in cluster mode, one process per node (each under
// supervise.sh like every other process the tooling starts), joined by `redis-cli --cluster create`. It is
// what a managed "cluster edition" is underneath, and what users scale the queue past one node with, so the
// code paths that must work there (ioredis' Cluster client, hash-tagged keys, Lua scripts, failover) are
// tested against the real thing.

export interface ClusterNodeInfo {
  port: number;
  /** The cluster bus port (set explicitly: port + 10000 may not be free, or may not exist). */
  busPort: number;
  id: string;
  role: 'primary' | 'replica';
  /** A replica's primary (node id). */
  primaryId?: string;
  /** A primary's slot ranges, e.g. [[0, 5460]]. */
  slots: [number, number][];
  /** Up as far as this node's own view goes (false: it was killed, or the cluster marks it failed). */
  up: boolean;
}

export interface LocalRedisCluster {
  /** `redis+cluster://127.0.0.1:<port>,...`: every node as a seed (shared/redis-connection.ts). */
  readonly url: string;
  readonly version: string;
  readonly ports: readonly number[];
  /** The node table as the cluster itself reports it (CLUSTER NODES, asked of a live node). */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** The primary serving `key`'s hash slot (for a `{tcr}` prefix: every key of the queue). */
  primaryFor(key: string): Promise<ClusterNodeInfo>;
  /**
   * SIGKILLs one node (its whole process group: no shutdown, no last save), as a crashed machine would. A
   * replica of a killed primary is promoted once the others have marked it failed (cluster-node-timeout).
   */
  kill(port: number): Promise<void>;
  /** Starts a killed node again with its own nodes.conf: it rejoins (a former primary as a replica). */
  restart(port: number): Promise<void>;
  /** Until every slot is served by a live primary and every node reports cluster_state:ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  primaries?: number;
  replicasPerPrimary?: number;
  /** How long a node may be unreachable before it is marked failed (and its replica promoted). */
  nodeTimeoutMs?: number;
  timeoutMs?: number;
}

/** CRC16-CCITT (XMODEM) of a key's hash tag, modulo 16384: Redis Cluster's key → slot mapping. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  let tagged = key;
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) tagged = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(tagged, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/**
 * Starts `primaries` × (1 + `replicasPerPrimary`) redis-server processes in cluster mode on free loopback
 * ports, in one temp folder (removed on stop, or by the supervisors if this process dies), without
 * persistence and with `noeviction` as BullMQ wants, and forms the cluster.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<LocalRedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  const timeout = opts.timeoutMs ?? 30_000;
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 2000;
  let version = 'unknown';
  try {
    version =
      /v=([\d.]+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? version;
    execFileSync('redis-cli', ['--version'], { encoding: 'utf8' });
  } catch {
    throw new Error(
      'redis-server or redis-cli is not installed: run `npm run setup` (installs Debian redis-server, which brings both)',
    );
  }
  const count = primaries * (1 + replicas);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-redis-cluster-'));
  const ports: { port: number; busPort: number }[] = [];
  const taken = new Set<number>();
  while (ports.length < count) {
    const port = await findFreePort();
    const busPort = await findFreePort();
    if (port === busPort || taken.has(port) || taken.has(busPort)) continue;
    taken.add(port).add(busPort);
    ports.push({ port, busPort });
  }
  const procs = new Map<number, ManagedProcess>();

  const launch = async (port: number, busPort: number) => {
    const nodeDir = path.join(dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    const proc = startProcess({
      name: `redis-cluster[${port}]`,
      command: 'redis-server',
      args: [
        '--port',
        String(port),
        '--cluster-port',
        String(busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-announce-ip',
        '127.0.0.1',
        '--protected-mode',
        'yes',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        nodeDir,
        '--maxmemory-policy',
        'noeviction',
      ],
      logFile: path.join(nodeDir, 'redis.log'),
      cleanupDir: dir,
    });
    procs.set(port, proc);
    await waitUntilReady(proc, async () => (await command(port, 'PING')) === '+PONG', timeout, 'PING');
  };

  const stop = async () => {
    await Promise.allSettled([...procs.values()].map((p) => p.stop()));
    procs.clear();
    rmSync(dir, { recursive: true, force: true });
  };

  const liveNodeTable = async (): Promise<ClusterNodeInfo[]> => {
    for (const { port } of ports) {
      if (!procs.has(port)) continue;
      const text = await command(port, 'CLUSTER', 'NODES').catch(() => undefined);
      if (text) return parseClusterNodes(text, ports);
    }
    throw new Error('no live node of the Redis Cluster answers CLUSTER NODES');
  };

  const waitHealthy = async (ms = timeout) => {
    const deadline = Date.now() + ms;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const live = ports.filter((p) => procs.has(p.port));
        const states = await Promise.all(live.map((p) => command(p.port, 'CLUSTER', 'INFO')));
        // Settled means every live node tells the same story, not just the first one asked: right after
        // `--cluster create` or a restart, a node's own view can still list a replica as a primary without
        // slots, or a restarted node can still think it serves its old slots until gossip corrects it.
        const views = await Promise.all(
          live.map(async (p) => parseClusterNodes(await command(p.port, 'CLUSTER', 'NODES'), ports)),
        );
        const shape = (nodes: ClusterNodeInfo[]) =>
          nodes
            .filter((n) => n.up && procs.has(n.port))
            .map(
              (n) =>
                `${n.port}:${n.role}:${n.role === 'primary' ? n.slots.map(([a, b]) => `${a}-${b}`).join(',') : n.primaryId}`,
            )
            .sort()
            .join(' ');
        const nodes = views[0] ?? [];
        const agreed = views.every((v) => shape(v) === shape(nodes));
        const upPrimaries = nodes.filter((n) => n.role === 'primary' && n.up && procs.has(n.port));
        const served = upPrimaries.reduce(
          (sum, n) => sum + n.slots.reduce((s, [a, b]) => s + b - a + 1, 0),
          0,
        );
        const ok = states.every((s) => /cluster_state:ok/.test(s));
        // Every live replica has finished its first sync, so that a failover has a copy to promote.
        const replicasSynced = await Promise.all(
          nodes
            .filter((n) => n.role === 'replica' && procs.has(n.port))
            .map(async (n) => /master_link_status:up/.test(await command(n.port, 'INFO', 'replication'))),
        );
        const settled =
          agreed && upPrimaries.length === primaries && upPrimaries.every((n) => n.slots.length > 0);
        if (ok && settled && served === 16384 && replicasSynced.every(Boolean)) return;
        last = `${states.filter((s) => /cluster_state:ok/.test(s)).length}/${live.length} nodes ok, ${served}/16384 slots served, ${upPrimaries.length}/${primaries} primaries, views ${agreed ? 'agree' : 'differ'}, ${replicasSynced.filter(Boolean).length}/${replicasSynced.length} replicas synced`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Redis Cluster not healthy within ${ms} ms (${last}); logs under ${dir}`);
  };

  try {
    await Promise.all(ports.map((p) => launch(p.port, p.busPort)));
    // redis-cli assigns the slots, pairs replicas with primaries and sends CLUSTER MEET; it is supervised
    // like the servers (a short-lived process, but a killed runner must not leave it behind either).
    const create = startProcess({
      name: 'redis-cli --cluster create',
      command: 'redis-cli',
      args: [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      logFile: path.join(dir, 'cluster-create.log'),
    });
    const code = await Promise.race([
      create.exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeout).unref()),
    ]);
    if (code !== 0) {
      await create.stop('SIGKILL');
      throw new Error(`redis-cli --cluster create failed (${code}):\n${create.tail(20)}`);
    }
    await waitHealthy();
  } catch (error) {
    await stop();
    throw error;
  }

  const byPort = new Map(ports.map((p) => [p.port, p.busPort]));
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p.port}`).join(',')}`,
    version,
    ports: ports.map((p) => p.port),
    nodes: liveNodeTable,
    async primaryFor(key: string) {
      const slot = slotOf(key);
      const node = (await liveNodeTable()).find(
        (n) => n.role === 'primary' && n.up && n.slots.some(([a, b]) => slot >= a && slot <= b),
      );
      if (!node) throw new Error(`no live primary serves slot ${slot} (key ${key})`);
      return node;
    },
    async kill(port: number) {
      const proc = procs.get(port);
      if (!proc) throw new Error(`no running Redis Cluster node on port ${port}`);
      procs.delete(port);
      // The whole group: the supervisor and redis-server itself (a SIGKILL of the supervisor alone would
      // leave the server running).
      if (proc.child.pid !== undefined) process.kill(-proc.child.pid, 'SIGKILL');
      await proc.exited;
    },
    async restart(port: number) {
      const busPort = byPort.get(port);
      if (busPort === undefined) throw new Error(`port ${port} is not a node of this Redis Cluster`);
      if (procs.has(port)) throw new Error(`Redis Cluster node ${port} is running`);
      await launch(port, busPort);
    },
    waitHealthy,
    stop,
  };
}

/** Parses CLUSTER NODES: `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodes(
  text: string,
  known: readonly { port: number; busPort: number }[] = [],
): ClusterNodeInfo[] {
  const nodes: ClusterNodeInfo[] = [];
  for (const line of text.trim().split('\n')) {
    const [id, address, flags, primary, , , , link, ...slots] = line.trim().split(' ');
    if (!id || !address || !flags) continue;
    const port = Number(/:(\d+)@/.exec(address)?.[1] ?? /:(\d+)$/.exec(address)?.[1]);
    const flagList = flags.split(',');
    nodes.push({
      port,
      busPort: known.find((k) => k.port === port)?.busPort ?? Number(/@(\d+)/.exec(address)?.[1]),
      id,
      role: flagList.includes('master') ? 'primary' : 'replica',
      ...(primary && primary !== '-' ? { primaryId: primary } : {}),
      slots: slots
        .filter((s) => !s.startsWith('['))
        .map((s) => {
          const [a, b] = s.split('-').map(Number);
          return [a as number, (b ?? a) as number];
        }),
      up: link === 'connected' && !flagList.includes('fail') && !flagList.includes('fail?'),
    });
  }
  return nodes;
}

/** One RESP command over a fresh loopback socket; resolves with the raw first reply line (or bulk text). */
function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(2000);
    let data = '';
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      if (data.startsWith('$')) {
        const header = data.indexOf('\r\n');
        const length = Number(data.slice(1, header));
        if (length < 0) {
          socket.destroy();
          resolve('');
        } else if (Buffer.byteLength(data) >= header + 2 + length + 2) {
          socket.destroy();
          resolve(data.slice(header + 2, header + 2 + length));
        }
      } else if (data.includes('\r\n')) {
        socket.destroy();
        if (data.startsWith('-')) reject(new Error(data.trim().slice(1)));
        else resolve(data.slice(0, data.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
    socket.on('timeout', () => {
      socket.destroy();
      reject(new Error(`Redis on port ${port} did not answer ${args[0]} within 2 s`));
    });
  });
}
