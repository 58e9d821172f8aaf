import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { requireNode, runNode } from '../support/node.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);

// The README's first command, end to end, as a user runs it: `npm start` (npm → sh → node), its own control
// plane (beside the run's), Redis, relay, workers, the sample CR and the demo namespaces, until everything has
// converged, with its own node (beside the run's) and a Deployment that pulls with the issued token; then the
// CLI with the environment it printed; then SIGINT to npm's PID alone (a supervisor or `kill -INT`, not a
// terminal's Ctrl-C to the whole group) stops everything.
describe('npm start (the local embedded default)', () => {
  let out = '';

  it('runs the whole pipeline, converges the demo, serves the CLI, and stops on SIGINT to npm alone', async () => {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A group of its own, only so that a failed test can stop all of it; the test signals npm's PID alone.
      detached: true,
    });
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // After the convergence (and the node's Deployment, where there is a node) it says how to stop it.
      await waitFor('the demo to converge', () => /Ctrl-C to stop/.test(out), {
        timeoutMs: 150_000,
        intervalMs: 500,
      }).catch((error: Error) => {
        throw new Error(`${error.message}; npm start's output so far:\n${out.slice(-3000)}`);
      });
      expect(out).toMatch(/relay ready/);
      expect(out).toMatch(/created Secret demo-1\/tcr\.ipsimagepullsecret-sample/);
      expect(out).toMatch(/NAME\s+NAMESPACES\s+SERVICE-ACCOUNTS\s+SECRETS-DESIRED\s+SECRETS-SUCCESS/);
      expect(out).toMatch(
        /converged: \d+ namespaces carry tcr\.ipsimagepullsecret-sample; newns\/kung lists it; demo-1 and demo-2 carry tcr\.ipstcr-issued \(CreateInstanceToken calls: 1\)/,
      );
      // The issued token went through the refresher, visible in the audit lines it prints.
      expect(out).toMatch(
        /job registry-tokens all @fleet \(\w+\) success in \d+ ms: created TCR token tcr-local1\.longterm/,
      );

      // The CLI against the demo, with the environment npm start wrote for it (the emulator's key included).
      const envFile = /source (\S+cli\.env)/.exec(out)?.[1];
      expect(envFile, out.slice(-2000)).toBeDefined();
      const cliEnv = Object.fromEntries(
        readFileSync(envFile!, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('export '))
          .map((l) => {
            const [k, ...v] = l.slice('export '.length).split('=');
            return [k, v.join('=').replace(/^'(.*)'$/, '$1')];
          }),
      );
      expect(Object.keys(cliEnv)).toEqual(
        expect.arrayContaining([
          'KUBECONFIG',
          'REDIS_URL',
          'TENCENTCLOUD_SECRET_ID',
          'TENCENTCLOUD_ENDPOINT',
        ]),
      );
      // The key is in the file (mode 0600), not in what npm start printed.
      expect(out).not.toContain(cliEnv.TENCENTCLOUD_SECRET_KEY);
      const tokens = await run(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'functions', 'cli.ts'), 'tokens'],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...cliEnv, LOG_LEVEL: 'silent' } },
      );
      expect(tokens.stderr).toBe('');

      const clusterDir = path.dirname(cliEnv.KUBECONFIG!);
      expect(existsSync(clusterDir)).toBe(true);
      const stopAt = Date.now();
      process.kill(child.pid!, 'SIGINT');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 40_000))]);
      console.log(`[quickstart] SIGINT to npm's PID: exit ${code} after ${Date.now() - stopAt} ms`);
      expect(code).toBe(0);
      expect(existsSync(clusterDir)).toBe(false);
      expect(out).not.toMatch(/\n\s+at .+:\d+:\d+/);
      expect(out).not.toContain('tcr.jwt.token');
      if (!runNode()) expect(out).toMatch(/no node: this machine cannot host one/);
    } finally {
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {}
      }
    }
    // The convergence wait alone allows 150 s, the stop 40 s: above both, so that a slow start fails with
    // the wait's message and npm start's output, not a bare test timeout.
  }, 300_000);

  it('ends with a Deployment whose YAML names no pull Secret, Running with the token tcr-assistant issued', (ctx) => {
    requireNode(ctx);
    expect(out).toMatch(/node 127\.0\.0\.1 Ready in \d+ ms/);
    expect(out).toMatch(
      /Deployment demo-1\/hello Running on node 127\.0\.0\.1: pod hello-\S+ pulled 127\.0\.0\.1:\d+\/demo\/hello:v1 with tcr\.ipstcr-issued \(a token tcr-assistant issued\)/,
    );
    expect(out).toContain('its log: "hello from a pod that named no pull Secret"');
  });
});
