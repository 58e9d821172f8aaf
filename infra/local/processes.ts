import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerRunProcess } from './run-registry.js';

const SUPERVISOR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'supervise.sh');

export interface ManagedProcess {
  readonly name: string;
  readonly cleanupDir?: string | undefined;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** The last lines the process printed: for error messages when it dies or never gets ready. */
  tail(lines?: number): string;
}

const live = new Set<ManagedProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Synchronous last resort: `exit` handlers cannot await, so kill what is still running.
  process.on('exit', () => {
    for (const p of live) {
      killGroup(p.child, 'SIGKILL');
      if (p.cleanupDir) rmSync(p.cleanupDir, { recursive: true, force: true });
    }
  });
}

/**
 * Appends a child's stdout and stderr to `logFile`. Neither pipe ends the file: two sources share it, and the
 * one that ends first (a program can close its stdout and keep writing to stderr) would otherwise end it under
 * the other ("write after end", an uncaught error). The file is ended once every stdio stream of the child has
 * closed. A write error (a full disk) is reported once and does not stop the run.
 */
export function logOutputTo(child: ChildProcess, logFile: string): void {
  const log = createWriteStream(logFile, { flags: 'a' });
  let reported = false;
  log.on('error', (error) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`[tcr-assistant] cannot write ${logFile}: ${error.message}\n`);
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.once('close', () => log.end());
}

/**
 * Starts a command under supervise.sh, which ends it if this Node process disappears without cleaning
 * up (kill -9, a crashed test runner). stdout and stderr go to `logFile`.
 */
export function startProcess(opts: {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cleanupDir?: string;
  env?: NodeJS.ProcessEnv;
}): ManagedProcess {
  installExitHooks();
  const child = spawn(
    'bash',
    [SUPERVISOR, String(process.pid), opts.cleanupDir ?? '-', '--', opts.command, ...opts.args],
    // A process group of its own: a stop that runs out of patience kills the whole group, so the program
    // can never outlive its supervisor.
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The run's tag (TCR_RUN_ID) goes with every process, even one given an environment of its own.
      env: { ...(opts.env ?? process.env), ...runTag() },
      detached: true,
    },
  );
  logOutputTo(child, opts.logFile);
  if (child.pid !== undefined)
    registerRunProcess({ pid: child.pid, name: opts.name, cleanupDir: opts.cleanupDir });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(managed);
      resolve(code);
    });
  });
  const managed: ManagedProcess = {
    name: opts.name,
    cleanupDir: opts.cleanupDir,
    logFile: opts.logFile,
    child,
    exited,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    tail(lines = 30) {
      try {
        return readFileSync(opts.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no output)';
      }
    },
  };
  live.add(managed);
  return managed;
}

/** This run's identity, if CI set one (see .ci/run). */
function runTag(): Record<string, string> {
  return process.env.TCR_RUN_ID ? { TCR_RUN_ID: process.env.TCR_RUN_ID } : {};
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** Polls `probe` until it returns true, failing early if `proc` exits, with its last output in the error. */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  proc.exited.then((code) => {
    exitCode = code;
  });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(`${proc.name} exited (code ${exitCode}) before ${what}; last output:\n${proc.tail()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${proc.name}: ${what} did not happen within ${timeoutMs} ms; last output:\n${proc.tail()}`,
  );
}
