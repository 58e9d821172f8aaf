import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logOutputTo } from '../../../infra/local/processes.js';

describe('logOutputTo', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps what a program writes to stderr after closing its stdout (no "write after end")', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tcr-log-'));
    dirs.push(dir);
    const file = path.join(dir, 'out.log');
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      // stdout ends first; stderr goes on writing: the case that ended the shared file under the other pipe.
      const child = spawn('bash', ['-c', 'echo out; exec 1>&-; sleep 0.2; echo late >&2'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      logOutputTo(child, file);
      await new Promise((resolve) => child.once('close', resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(errors).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('out\nlate\n');
  });
});
