import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

// The network rule as a checked property: every socket of every process in the node's PID namespace
// (containerd, kubelet, shims, every container) is looked up in its own network namespace's tables, and any
// connection whose peer is outside 127.0.0.0/8 (or ::1) is a violation. The scan is a snapshot; the node
// samples it continuously (node.ts) on top of the structural prevention (loopback DNS, loopback-only CNI,
// a loopback service CIDR).

export type SocketProtocol = 'tcp' | 'tcp6' | 'udp' | 'udp6';

export interface SocketEntry {
  protocol: SocketProtocol;
  local: string;
  remote: string;
  remoteIp: string;
  state: string;
  inode: number;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/** `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host (little-endian) order. */
export function decodeProcAddress(hex: string): { ip: string; port: number } {
  const [addr = '', port = '0'] = hex.split(':');
  const words = addr.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [w.slice(6, 8), w.slice(4, 6), w.slice(2, 4), w.slice(0, 2)]);
  const n = bytes.map((b) => Number.parseInt(b, 16));
  let ip: string;
  if (n.length === 4) ip = n.join('.');
  else {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((n[i] ?? 0) << 8) | (n[i + 1] ?? 0)).toString(16));
    ip = groups.join(':');
    // ::ffff:a.b.c.d, IPv4-mapped: report it as the IPv4 address it is.
    if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') ip = n.slice(12).join('.');
  }
  return { ip, port: Number.parseInt(port, 16) };
}

/**
 * One /proc/<pid>/net/{tcp,tcp6,udp,udp6} table; with `only`, just the lines of those socket inodes (the
 * host's table lists every socket of the machine: decoding them all would cost more than the rest of a scan).
 */
export function parseProcNetTable(text: string, protocol: SocketProtocol, only?: Set<number>): SocketEntry[] {
  const entries: SocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    if (only && !only.has(Number(INODE_FIELD.exec(line)?.[1]))) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = decodeProcAddress(f[1] ?? '');
    const remote = decodeProcAddress(f[2] ?? '');
    entries.push({
      protocol,
      local: formatEndpoint(local.ip, local.port),
      remote: formatEndpoint(remote.ip, remote.port),
      remoteIp: remote.ip,
      state: protocol.startsWith('tcp') ? (TCP_STATES[f[3] ?? ''] ?? f[3] ?? '') : '',
      inode: Number(f[9]),
    });
  }
  return entries;
}

/** The 10th field of a table line: the socket inode. */
const INODE_FIELD = /^\s*\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+)/;

const formatEndpoint = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** 127.0.0.0/8 and ::1. */
export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '0:0:0:0:0:0:0:1';
}

/** 0.0.0.0 / :: as a peer: a listening or unconnected socket, no peer at all. */
export function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '0:0:0:0:0:0:0:0';
}

/** A socket with a peer outside loopback: what the network rule forbids. */
export function hasForbiddenPeer(entry: SocketEntry): boolean {
  return !isUnspecified(entry.remoteIp) && !isLoopback(entry.remoteIp);
}

export interface ObservedSocket extends SocketEntry {
  /** The process's PID as the node's namespace numbers it. */
  pid: number;
  command: string;
}

export interface SocketScan {
  processes: number;
  sockets: ObservedSocket[];
  violations: ObservedSocket[];
}

/**
 * Every TCP/UDP socket held by a process visible in `procRoot` (the node's own procfs, reached from the host
 * as `/proc/<init>/root/proc`), with its peer. Processes that end during the scan are skipped.
 */
export async function scanSockets(procRoot: string): Promise<SocketScan> {
  const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name));
  // First every process's socket inodes, then each network namespace's tables once, decoding only those.
  const processes: { pid: number; command: string; netns: string; dir: string; inodes: number[] }[] = [];
  for (const pid of pids) {
    const dir = path.join(procRoot, pid);
    try {
      const netns = await readlink(path.join(dir, 'ns', 'net'));
      const command = (await readFile(path.join(dir, 'comm'), 'utf8')).trim();
      const inodes: number[] = [];
      for (const fd of await readdir(path.join(dir, 'fd'))) {
        const target = await readlink(path.join(dir, 'fd', fd)).catch(() => '');
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode) inodes.push(Number(inode));
      }
      processes.push({ pid: Number(pid), command, netns, dir, inodes });
    } catch {
      // The process ended while we looked: nothing of it left to check.
    }
  }
  const tables = new Map<string, Map<number, SocketEntry>>();
  for (const p of processes) {
    if (tables.has(p.netns) || p.inodes.length === 0) continue;
    const wanted = new Set(processes.filter((q) => q.netns === p.netns).flatMap((q) => q.inodes));
    const table = new Map<number, SocketEntry>();
    for (const protocol of ['tcp', 'tcp6', 'udp', 'udp6'] as const) {
      if (table.size === wanted.size) break;
      const text = await readFile(path.join(p.dir, 'net', protocol), 'utf8').catch(() => '');
      for (const entry of parseProcNetTable(text, protocol, wanted)) table.set(entry.inode, entry);
    }
    tables.set(p.netns, table);
  }
  const sockets: ObservedSocket[] = [];
  for (const p of processes) {
    for (const inode of p.inodes) {
      const entry = tables.get(p.netns)?.get(inode);
      if (entry) sockets.push({ ...entry, pid: p.pid, command: p.command });
    }
  }
  return { processes: processes.length, sockets, violations: sockets.filter(hasForbiddenPeer) };
}

export function describeSocket(s: ObservedSocket): string {
  return `${s.command}[${s.pid}] ${s.protocol} ${s.local} -> ${s.remote}${s.state ? ` ${s.state}` : ''}`;
}
