import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from './free-port.js';
import { type ManagedProcess, startProcess, waitUntilReady } from './processes.js';

export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  readonly version: string;
  /** Stops the server but keeps the port, so `start` brings the same URL back (outage tests). */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's redis-server on a free loopback port, without persistence, as BullMQ wants it (noeviction). */
export async function startRedis(opts: { port?: number; timeoutMs?: number } = {}): Promise<LocalRedis> {
  const bin = 'redis-server';
  let version = 'unknown';
  try {
    version = /v=([\d.]+)/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))?.[1] ?? version;
  } catch {
    throw new Error('redis-server is not installed: run `npm run setup` (installs Debian redis-server)');
  }
  const port = opts.port ?? (await findFreePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-redis-'));
  let proc: ManagedProcess | undefined;
  const start = async () => {
    proc = startProcess({
      name: 'redis-server',
      command: bin,
      args: [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--maxmemory-policy',
        'noeviction',
        '--protected-mode',
        'yes',
      ],
      logFile: path.join(dir, 'redis.log'),
      cleanupDir: dir,
    });
    await waitUntilReady(proc, () => ping(port), opts.timeoutMs ?? 15_000, 'redis PING');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    version,
    start,
    async pause() {
      await proc?.stop();
      proc = undefined;
    },
    async stop() {
      await proc?.stop();
      proc = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1_000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      resolve(data.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}
