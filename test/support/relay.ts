import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { findFreePort } from '../../infra/local/free-port.js';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { waitFor } from './wait.js';

export interface RelayProcess {
  port: number;
  child: ChildProcess;
  output(): string;
  metrics(): Promise<string>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  ready(): Promise<boolean>;
  waitReady(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `relay/main.ts` as its own process (so it can be SIGKILLed), as the relay's ServiceAccount. */
export async function startRelayProcess(env: Record<string, string>): Promise<RelayProcess> {
  const port = await findFreePort();
  // `node --import tsx`, not the tsx binary: that one runs the program in a child process, which a SIGKILL
  // of the parent would leave running.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'relay', 'main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, HTTP_PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const get = async (p: string) =>
    fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(2000) });
  const relay: RelayProcess = {
    port,
    child,
    output: () => out,
    metrics: async () => (await get('/metrics')).text(),
    async metric(name, labels = {}) {
      const text = await relay.metrics();
      let total = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          total += Number(line.split(' ').pop());
      }
      return total;
    },
    ready: async () => (await get('/readyz').catch(() => undefined))?.status === 200,
    // 120 s: a relay is a node process compiling TypeScript at start, then listing every object of a cluster
    // that earlier files filled (~1,000 namespaces); on 2 loaded cores that took over 30 s.
    async waitReady(timeoutMs = 120_000) {
      await waitFor(`relay on :${port} to be ready`, () => relay.ready(), {
        timeoutMs,
        intervalMs: 100,
      }).catch((error: Error) => {
        // The output at the timeout, not at the start of the wait (which was empty).
        throw new Error(
          `${error.message}; relay exit ${child.exitCode ?? child.signalCode ?? 'none'}, output: ${out.slice(-1500)}`,
        );
      });
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
  process.once('exit', () => child.kill('SIGKILL'));
  return relay;
}
