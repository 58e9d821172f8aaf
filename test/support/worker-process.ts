import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../infra/local/paths.js';

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `functions worker` as its own process, exactly as deployed (the CLI's worker runtime: BullMQ workers,
 * schedules, and whatever else that runtime runs), so that a test sees what an operator would.
 */
export function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  // `node --import tsx`, not the tsx binary (which would run the program in a child a SIGKILL leaves behind).
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'functions', 'cli.ts'), 'worker'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, METRICS_PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    child,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
