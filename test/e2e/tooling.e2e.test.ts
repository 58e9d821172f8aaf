import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { auditStreamKey, RedisAudit } from '../../functions/adapters/redis-audit.js';
import { findFreePort } from '../../infra/local/free-port.js';
import { REPO_ROOT } from '../../infra/local/paths.js';
import { connectRedis } from '../../shared/queue.js';

// The functions CLI as an operator runs it (issue 14, item 11): without its environment, against a Redis that
// is not there, and `audit --limit` as `tail` would.

const run = promisify(execFile);
const cli = path.join(REPO_ROOT, 'functions', 'cli.ts');
const redis = connectRedis(inject('redisUrl'));

afterAll(() => redis.disconnect());

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI with exactly `env` (plus PATH/HOME), killing it after `timeoutMs`. */
async function functionsCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<Outcome> {
  const started = Date.now();
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info' };
  try {
    const out = await run(process.execPath, ['--import', 'tsx', cli, ...args], {
      cwd: REPO_ROOT,
      env: { ...base, ...env },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout: out.stdout, stderr: out.stderr, ms: Date.now() - started };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    return {
      code: e.killed ? null : typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      ms: Date.now() - started,
    };
  }
}

const stackTrace = /\n\s+at .+:\d+:\d+/;

describe('the functions CLI without its environment', () => {
  it('names the missing REDIS_URL and exits, instead of retrying 127.0.0.1:6379 forever', async () => {
    const out = await functionsCli(['audit', '--limit', '1'], {});
    expect(out.code, `${out.stdout}${out.stderr}`).toBe(2);
    expect(out.stderr).toMatch(/REDIS_URL is not set/);
    expect(out.stderr).not.toMatch(stackTrace);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('says once that Redis cannot be reached, and exits', async () => {
    const port = await findFreePort();
    const out = await functionsCli(['audit', '--limit', '1'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(out.code, `${out.stdout}${out.stderr}`).toBe(1);
    expect(out.stderr).toMatch(new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}`));
    expect(out.stderr).not.toMatch(stackTrace);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('functions audit --limit N', () => {
  it('prints the newest N entries, oldest of them first (as tail does)', async () => {
    const prefix = `{aud${randomBytes(3).toString('hex')}}`;
    const audit = new RedisAudit(redis, auditStreamKey(prefix), 1000);
    for (let i = 1; i <= 5; i++) {
      await audit.record({
        time: new Date().toISOString(),
        cluster: 'e2e',
        kind: 'namespace',
        key: `namespace n${i} @e2e`,
        namespace: `n${i}`,
        trigger: 'cli',
        actions: [],
        outcome: 'success',
        durationMs: 1,
        attempt: 1,
      });
    }
    const out = await functionsCli(['audit', '--limit', '3'], {
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'silent',
    });
    expect(out.code, out.stderr).toBe(0);
    const keys = out.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { namespace: string }).namespace);
    expect(keys).toEqual(['n3', 'n4', 'n5']);
  });
});
