import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/local/paths.js';

// .ci/run as CI runs it, with a stand-in for `npm test` (its own suite is the one running this): it finds and
// stops what its run left behind, and nothing else, even with another run going on and a process outside
// both that the old name pattern (`tcr-cp-…`) would have matched.

const fake = `node --import tsx ${path.join(REPO_ROOT, 'test', 'fixtures', 'ci-fake-tests.ts')}`;
const decoys: ChildProcess[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tcr-ci-test-'));

afterAll(() => {
  for (const d of decoys) d.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

function ciRun(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn('bash', [path.join(REPO_ROOT, '.ci', 'run')], {
    cwd: REPO_ROOT,
    env: { ...process.env, TCR_CI_TEST_COMMAND: fake, TMPDIR: tmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('.ci/run', () => {
  it('two runs at once: each stops only what it left behind; a process named like ours outside both survives', async () => {
    // What the old `pkill -f 'tcr-cp-|…'` matched: someone else's control plane, say.
    const decoy = spawn('bash', ['-c', 'exec -a tcr-cp-someone-else sleep 300'], {
      stdio: 'ignore',
      detached: true,
    });
    decoys.push(decoy);
    const [clean, dirty] = await Promise.all([
      ciRun({ FAKE_TESTS_MS: '3000' }),
      ciRun({ LEAVE_BEHIND: '1', FAKE_TESTS_MS: '500' }),
    ]);
    expect(clean.code, clean.out).toBe(0);
    expect(clean.out.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
    expect(dirty.code, dirty.out).toBe(1);
    expect(dirty.out).toMatch(/processes of this run left behind by the tests/);
    const leftover = Number(/(\d+):process:sleep 299/.exec(dirty.out)?.[1]);
    expect(leftover).toBeGreaterThan(0);
    expect(alive(leftover)).toBe(false);
    expect(dirty.out.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
    expect(alive(decoy.pid!)).toBe(true);
    // Each run cleans up its own tracking folder.
    expect(readdirSync(tmp).filter((n) => n.startsWith('tcr-ci-') && existsSync(path.join(tmp, n)))).toEqual(
      [],
    );
  });
});
