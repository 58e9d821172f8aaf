import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { requireNode, runNode } from '../support/node.js';

// The README's first command, end to end: its own control plane (beside the run's), Redis, relay, workers,
// the sample CR and the demo namespaces, until everything has converged; with its own node (beside the
// run's), a Deployment that pulls with the issued token.
describe('npm start (the local embedded default)', () => {
  let out = '';

  it('runs the whole pipeline and converges the demo, then cleans up', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'infra', 'local', 'up.ts')],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, TCR_LOCAL_EXIT_AFTER_READY: '1', LOG_LEVEL: 'error' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out.slice(-3000)).toBe(0);
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
    expect(out).not.toContain('tcr.jwt.token');
    if (!runNode()) expect(out).toMatch(/no node: this machine cannot host one/);
  });

  it('ends with a Deployment whose YAML names no pull Secret, Running with the token tcr-assistant issued', (ctx) => {
    requireNode(ctx);
    expect(out).toMatch(/node 127\.0\.0\.1 Ready in \d+ ms/);
    expect(out).toMatch(
      /Deployment demo-1\/hello Running on node 127\.0\.0\.1: pod hello-\S+ pulled 127\.0\.0\.1:\d+\/demo\/hello:v1 with tcr\.ipstcr-issued \(a token tcr-assistant issued\)/,
    );
    expect(out).toContain('its log: "hello from a pod that named no pull Secret"');
  });
});
