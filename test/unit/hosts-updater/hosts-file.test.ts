import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HostsFileDetachedError,
  type HostsFileHandle,
  type HostsFs,
  nodeFs,
  readHostsFile,
  recoverHostsFile,
  writeHostsFileSafely,
} from '../../../hosts-updater/crash-safe-write.js';
import {
  applyHostsBlock,
  BLOCK_BEGIN,
  BLOCK_END,
  renderHostsBlock,
} from '../../../hosts-updater/hosts-block.js';
import { syncHostsFile } from '../../../hosts-updater/hosts-file.js';
import { type HostEntry, validateEntries } from '../../../shared/contracts/updater-config.js';

const REG = 'myreg.tencentcloudcr.com';
const e = (domain: string, ip: string): HostEntry => ({ domain, ip });
const ONE = [e(REG, '10.0.0.5')];
const TWO = [e(REG, '10.0.0.5'), e('b.tencentcloudcr.com', 'fd00::7')];
const BLOCK_ONE = `${BLOCK_BEGIN}\n10.0.0.5 ${REG}\n${BLOCK_END}\n`;

/** A node's hosts file: comments, blank lines, tabs, aliases; no trailing newline. */
const NODE_HOSTS = [
  '# /etc/hosts of a node',
  '127.0.0.1\tlocalhost',
  '',
  '# The following lines are desirable for IPv6 capable hosts',
  '::1     ip6-localhost ip6-loopback',
  '',
  '10.1.2.3   node-1 node-1.cluster.local   # added by cloud-init',
].join('\n');

let root: string;
let seq = 0;
beforeAll(() => {
  root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'hosts-file-test-')));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh directory holding a hosts file, and a separate state directory for the journal. */
function fixture(content: string): { dir: string; file: string; stateDir: string } {
  const dir = path.join(root, `case-${++seq}`);
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(dir, 'hosts');
  writeFileSync(file, content, 'latin1');
  return { dir, file, stateDir };
}

const read = (file: string) => readFileSync(file, 'latin1');
const errno = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });

/** Leftovers of our writers: temp files next to the hosts file, journals in the state directory. */
function leftovers(dir: string, stateDir: string): string[] {
  return [
    ...readdirSync(dir).filter((n) => n.includes('tcr-hosts-updater')),
    ...readdirSync(stateDir).map((n) => `state/${n}`),
  ];
}

/** node:fs with rename onto `target` refused as for a bind-mounted file (other renames still work). */
function bindMountedFs(target: string, code = 'EBUSY'): HostsFs {
  return {
    ...nodeFs,
    rename: async (from, to) => {
      if (to === target) throw errno(code);
      return nodeFs.rename(from, to);
    },
  };
}

/** Counts every call that could change something on disk. */
function countingFs(base: HostsFs = nodeFs): { fs: HostsFs; writes: string[] } {
  const writes: string[] = [];
  const counted =
    <A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      writes.push(what);
      return fn(...args);
    };
  const wrap = (fh: HostsFileHandle, file: string): HostsFileHandle => ({
    write: counted(`write ${file}`, (b: Buffer, o: number, l: number, p: number) => fh.write(b, o, l, p)),
    truncate: counted(`truncate ${file}`, (n: number) => fh.truncate(n)),
    sync: () => fh.sync(),
    chmod: counted(`chmod ${file}`, (m: number) => fh.chmod(m)),
    chown: counted(`chown ${file}`, (u: number, g: number) => fh.chown(u, g)),
    close: () => fh.close(),
  });
  return {
    writes,
    fs: {
      ...base,
      open: async (file, flags, mode) => {
        if (flags !== 'r') writes.push(`open(${flags}) ${file}`);
        return wrap(await base.open(file, flags, mode), file);
      },
      rename: counted('rename', (a: string, b: string) => base.rename(a, b)),
      unlink: counted('unlink', (f: string) => base.unlink(f)),
      mkdir: async (d, o) => {
        if (!existsSync(d)) writes.push(`mkdir ${d}`);
        return base.mkdir(d, o);
      },
    },
  };
}

/**
 * node:fs that "dies" at operation number `crashAt`: that operation has no effect (a write lands only half
 * its bytes, as a power cut might leave it) and every later operation fails, as if the process were gone.
 * Handles left open are closed afterwards, as the kernel would.
 */
function crashingFs(crashAt: number, base: HostsFs = nodeFs) {
  let ops = 0;
  let dead = false;
  const open: HostsFileHandle[] = [];
  const step = () => {
    if (dead) throw new Error('process is dead');
    if (++ops === crashAt) {
      dead = true;
      return true;
    }
    return false;
  };
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (step()) throw new Error('crash');
      return fn(...args);
    };
  const wrap = (fh: HostsFileHandle): HostsFileHandle => ({
    write: async (buffer, offset, length, position) => {
      if (step()) {
        await fh.write(buffer, offset, Math.max(1, Math.floor(length / 2)), position);
        throw new Error('crash');
      }
      return fh.write(buffer, offset, length, position);
    },
    truncate: guard((n: number) => fh.truncate(n)),
    sync: guard(() => fh.sync()),
    chmod: guard((m: number) => fh.chmod(m)),
    chown: guard((u: number, g: number) => fh.chown(u, g)),
    close: guard(() => fh.close()),
  });
  const fs: HostsFs = {
    readFile: guard((f: string) => base.readFile(f)),
    open: guard(async (f: string, flags: string, mode?: number) => {
      const fh = await base.open(f, flags, mode);
      open.push(fh);
      return wrap(fh);
    }),
    rename: guard((a: string, b: string) => base.rename(a, b)),
    unlink: guard((f: string) => base.unlink(f)),
    stat: guard((f: string) => base.stat(f)),
    realpath: guard((f: string) => base.realpath(f)),
    mkdir: guard((d: string, o: { recursive: true }) => base.mkdir(d, o)),
    readdir: guard((d: string) => base.readdir(d)),
  };
  return {
    fs,
    get ops() {
      return ops;
    },
    get crashed() {
      return dead;
    },
    closeAll: async () => {
      for (const fh of open) await fh.close().catch(() => {});
    },
  };
}

describe('validateEntries', () => {
  it('keeps valid entries, normalized, sorted by domain, one per domain (the last one wins)', () => {
    const { valid, rejected } = validateEntries([
      { domain: 'Z.TencentCloudCR.com.', ip: '10.0.0.9' },
      { domain: REG, ip: '10.0.0.1' },
      { domain: 'a.example.com', ip: '2001:db8::1', extra: 'ignored' },
      { domain: REG, ip: '10.0.0.5' },
    ]);
    expect(valid).toEqual([
      e('a.example.com', '2001:db8::1'),
      e(REG, '10.0.0.5'),
      e('z.tencentcloudcr.com', '10.0.0.9'),
    ]);
    expect(rejected).toEqual([
      {
        index: 1,
        entry: { domain: REG, ip: '10.0.0.1' },
        reason: expect.stringMatching(/superseded by entry 3/),
      },
    ]);
  });

  it.each([
    ['not an object', 'myreg', /must be an object/],
    ['null', null, /must be an object/],
    ['missing domain', { ip: '10.0.0.1' }, /"domain" must be a string/],
    ['numeric ip', { domain: REG, ip: 10 }, /"ip" must be a string/],
    ['empty domain', { domain: '', ip: '10.0.0.1' }, /empty/],
    ['space in domain', { domain: 'my reg.com', ip: '10.0.0.1' }, /whitespace/],
    ['newline in domain', { domain: 'a.com\n1.2.3.4 evil.com', ip: '10.0.0.1' }, /whitespace/],
    ['wildcard', { domain: '*.tencentcloudcr.com', ip: '10.0.0.1' }, /wildcard/],
    ['label of 64', { domain: `${'a'.repeat(64)}.com`, ip: '10.0.0.1' }, /at most 63/],
    [
      '253+ characters',
      { domain: `${`${'a'.repeat(60)}.`.repeat(4)}abcdefghijkl.com`, ip: '10.0.0.1' },
      /at most 253/,
    ],
    ['empty label', { domain: 'a..com', ip: '10.0.0.1' }, /empty label/],
    ['leading hyphen', { domain: '-a.com', ip: '10.0.0.1' }, /inner hyphens/],
    ['underscore', { domain: 'a_b.com', ip: '10.0.0.1' }, /inner hyphens/],
    ['IP as domain', { domain: '10.0.0.1', ip: '10.0.0.1' }, /all digits/],
    ['bad IPv4', { domain: REG, ip: '10.0.0.256' }, /not an IPv4 or IPv6/],
    ['leading zeros', { domain: REG, ip: '010.0.0.1' }, /not an IPv4 or IPv6/],
    ['IP with spaces', { domain: REG, ip: ' 10.0.0.1' }, /not an IPv4 or IPv6/],
    ['zone id', { domain: REG, ip: 'fe80::1%eth0' }, /zone/],
  ])('rejects %s with a reason', (_name, entry, reason) => {
    const { valid, rejected } = validateEntries([entry, { domain: 'ok.example.com', ip: '10.0.0.2' }]);
    expect(valid).toEqual([e('ok.example.com', '10.0.0.2')]);
    expect(rejected).toEqual([{ index: 0, entry, reason: expect.stringMatching(reason) }]);
  });

  it('accepts exactly 63-character labels and 253-character names', () => {
    const name = [61, 63, 63, 63].map((n) => 'a'.repeat(n)).join('.');
    expect(name).toHaveLength(253);
    expect(validateEntries([{ domain: name, ip: '10.0.0.1' }]).rejected).toEqual([]);
  });

  it('rejects a non-array as a whole', () => {
    expect(validateEntries({ domain: REG, ip: '10.0.0.1' })).toEqual({
      valid: [],
      rejected: [{ index: -1, entry: { domain: REG, ip: '10.0.0.1' }, reason: 'hosts must be a JSON array' }],
    });
  });
});

describe('applyHostsBlock', () => {
  it('renders a marked block, one "<ip> <domain>" line per valid entry', () => {
    expect(renderHostsBlock([...TWO, e('bad domain', '1.2.3.4')])).toBe(
      `${BLOCK_BEGIN}\nfd00::7 b.tencentcloudcr.com\n10.0.0.5 ${REG}\n${BLOCK_END}\n`,
    );
    expect(renderHostsBlock([])).toBe('');
  });

  it.each([
    ['with a trailing newline', `${NODE_HOSTS}\n`],
    ['without a trailing newline', NODE_HOSTS],
    ['ending with blank lines', `${NODE_HOSTS}\n\n\n`],
    ['empty', ''],
    ['a lone newline', '\n'],
  ])('adds, updates and removes the block; a file %s comes back byte for byte', (_name, original) => {
    const added = applyHostsBlock(original, ONE);
    expect(added.startsWith(original.endsWith('\n') || original === '' ? original : `${original}\n`)).toBe(
      true,
    );
    expect(added.slice(added.indexOf(BLOCK_BEGIN))).toBe(
      original === '' || original.endsWith('\n') ? BLOCK_ONE : BLOCK_ONE.slice(0, -1),
    );
    const updated = applyHostsBlock(added, TWO);
    expect(updated).toBe(applyHostsBlock(original, TWO));
    expect(updated).toContain('fd00::7 b.tencentcloudcr.com');
    expect(applyHostsBlock(updated, null)).toBe(original);
    expect(applyHostsBlock(updated, [])).toBe(original);
    expect(applyHostsBlock(updated, [e('*.wild.com', '1.2.3.4')])).toBe(original);
  });

  it('keeps CRLF files CRLF, and each foreign line its own line ending', () => {
    const crlf = '127.0.0.1 localhost\r\n# comment\r\n\r\n10.1.2.3 node-1\n::1 ip6-localhost\r\n';
    const added = applyHostsBlock(crlf, ONE);
    expect(added).toBe(`${crlf}${BLOCK_BEGIN}\r\n10.0.0.5 ${REG}\r\n${BLOCK_END}\r\n`);
    expect(applyHostsBlock(added, null)).toBe(crlf);
  });

  it('updates the block where it is, leaving lines after it alone', () => {
    const file = `127.0.0.1 localhost\n${BLOCK_ONE}# after the block\n10.9.9.9 other.example.com\n`;
    expect(applyHostsBlock(file, TWO)).toBe(
      `127.0.0.1 localhost\n${renderHostsBlock(TWO)}# after the block\n10.9.9.9 other.example.com\n`,
    );
    expect(applyHostsBlock(file, null)).toBe(
      '127.0.0.1 localhost\n# after the block\n10.9.9.9 other.example.com\n',
    );
  });

  it('is idempotent and independent of input order', () => {
    const once = applyHostsBlock(NODE_HOSTS, TWO);
    expect(applyHostsBlock(once, TWO)).toBe(once);
    expect(applyHostsBlock(once, [...TWO].reverse())).toBe(once);
    expect(applyHostsBlock(NODE_HOSTS, null)).toBe(NODE_HOSTS);
  });

  it('a BEGIN without END loses only itself and the entry lines right after it', () => {
    const damaged = `127.0.0.1 localhost\n${BLOCK_BEGIN}\n10.0.0.1 old.tencentcloudcr.com\n10.0.0.2 ${REG}\n# user comment\n10.9.9.9 mine.example.com\n`;
    expect(applyHostsBlock(damaged, ONE)).toBe(
      `127.0.0.1 localhost\n${BLOCK_ONE}# user comment\n10.9.9.9 mine.example.com\n`,
    );
    expect(applyHostsBlock(damaged, null)).toBe(
      '127.0.0.1 localhost\n# user comment\n10.9.9.9 mine.example.com\n',
    );
  });

  it('a BEGIN followed by another BEGIN is an orphan; a stray END goes; two blocks become one', () => {
    const messy = `${BLOCK_BEGIN}\n${BLOCK_ONE}a\n${BLOCK_END}\nb\n${BLOCK_ONE}c\n`;
    expect(applyHostsBlock(messy, TWO)).toBe(`${renderHostsBlock(TWO)}a\nb\nc\n`);
    expect(applyHostsBlock(messy, null)).toBe('a\nb\nc\n');
  });
});

describe('writeHostsFileSafely and syncHostsFile', () => {
  it('adds, updates and removes the block in a file; foreign bytes (UTF-8 comments too) survive', async () => {
    const utf8 = Buffer.concat([Buffer.from(NODE_HOSTS, 'latin1'), Buffer.from('\n# café — 東京\n', 'utf8')]);
    const { file, stateDir } = fixture('');
    writeFileSync(file, utf8);

    let result = await syncHostsFile(file, ONE, { stateDir });
    expect(result).toMatchObject({ written: true, strategy: 'rename', entries: ONE });
    expect(readFileSync(file)).toEqual(Buffer.concat([utf8, Buffer.from(BLOCK_ONE)]));

    result = await syncHostsFile(file, TWO, { stateDir });
    expect(readFileSync(file)).toEqual(Buffer.concat([utf8, Buffer.from(renderHostsBlock(TWO))]));

    result = await syncHostsFile(file, null, { stateDir });
    expect(result).toMatchObject({ written: true, entries: [] });
    expect(readFileSync(file)).toEqual(utf8);
    expect(leftovers(path.dirname(file), stateDir)).toEqual([]);
  });

  it('writes nothing when the content is already right (no write call, same mtime)', async () => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    await syncHostsFile(file, TWO, { stateDir });
    const before = statSync(file);
    await new Promise((r) => setTimeout(r, 20));
    const counting = countingFs();
    const result = await syncHostsFile(file, [...TWO].reverse(), { stateDir, fs: counting.fs });
    expect(result).toMatchObject({ written: false, strategy: 'unchanged' });
    expect(counting.writes).toEqual([]);
    expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(file).ino).toBe(before.ino);
    // Removing a block that is not there is no write either.
    const empty = fixture(NODE_HOSTS);
    const counting2 = countingFs();
    expect(
      await syncHostsFile(empty.file, null, { stateDir: empty.stateDir, fs: counting2.fs }),
    ).toMatchObject({
      written: false,
    });
    expect(counting2.writes).toEqual([]);
  });

  it('keeps the mode of the file and writes through a symlink', async () => {
    const { dir, file, stateDir } = fixture(NODE_HOSTS);
    chmodSync(file, 0o640);
    const link = path.join(dir, 'hosts-link');
    symlinkSync(file, link);
    await syncHostsFile(link, ONE, { stateDir });
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(read(file)).toBe(`${NODE_HOSTS}\n${BLOCK_ONE.slice(0, -1)}`);
    expect(read(link)).toBe(read(file));
  });

  it.each([
    ['rename refused with EBUSY (bind-mounted file)', 'EBUSY'],
    ['rename refused with EXDEV', 'EXDEV'],
    ['rename refused with EPERM', 'EPERM'],
  ])('falls back to writing in place when %s, keeping the inode', async (_name, code) => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    const ino = statSync(file).ino;
    const result = await syncHostsFile(file, TWO, { stateDir, fs: bindMountedFs(file, code) });
    expect(result).toMatchObject({ written: true, strategy: 'in-place' });
    expect(read(file)).toBe(applyHostsBlock(NODE_HOSTS, TWO));
    expect(statSync(file).ino).toBe(ino);
    // Shrinking in place truncates the tail.
    await syncHostsFile(file, null, { stateDir, fs: bindMountedFs(file, code) });
    expect(read(file)).toBe(NODE_HOSTS);
    expect(leftovers(path.dirname(file), stateDir)).toEqual([]);
  });

  it('falls back to writing in place when no temp file can be created next to it (read-only directory)', async () => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    const readOnlyDir: HostsFs = {
      ...nodeFs,
      open: (f, flags, mode) =>
        flags === 'wx' && path.dirname(f) === path.dirname(file)
          ? Promise.reject(errno('EROFS'))
          : nodeFs.open(f, flags, mode),
    };
    expect(await syncHostsFile(file, ONE, { stateDir, fs: readOnlyDir })).toMatchObject({
      strategy: 'in-place',
    });
    expect(read(file)).toBe(applyHostsBlock(NODE_HOSTS, ONE));
  });

  it('never writes in place without a backup: an unwritable state directory leaves the file untouched', async () => {
    const { dir, file } = fixture(NODE_HOSTS);
    const notADir = path.join(dir, 'not-a-dir');
    writeFileSync(notADir, '');
    await expect(
      syncHostsFile(file, ONE, { stateDir: path.join(notADir, 'state'), fs: bindMountedFs(file) }),
    ).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(read(file)).toBe(NODE_HOSTS);
  });

  it('refuses text that is not a byte string rather than mangling it', async () => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    await expect(writeHostsFileSafely(file, '# 東京\n', { stateDir })).rejects.toThrow(/byte string/);
    expect(read(file)).toBe(NODE_HOSTS);
  });

  it('reports a hosts file that was replaced behind a bind mount (unlinked inode)', async () => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    const detached: HostsFs = { ...nodeFs, stat: async (f) => ({ ...(await nodeFs.stat(f)), nlink: 0 }) };
    await expect(syncHostsFile(file, ONE, { stateDir, fs: detached })).rejects.toBeInstanceOf(
      HostsFileDetachedError,
    );
    expect(read(file)).toBe(NODE_HOSTS);
  });

  it('writes back the old content at once when the in-place write fails (e.g. ENOSPC)', async () => {
    const { file, stateDir } = fixture(NODE_HOSTS);
    let failed = false;
    const fs: HostsFs = {
      ...bindMountedFs(file),
      open: async (f, flags, mode) => {
        const fh = await nodeFs.open(f, flags, mode);
        if (f !== file || flags !== 'r+') return fh;
        return {
          // The first write lands half its bytes and fails; writing the old content back then succeeds.
          write: async (buf, off, len, pos) => {
            if (failed) return fh.write(buf, off, len, pos);
            failed = true;
            await fh.write(buf, off, Math.floor(len / 2), pos);
            throw errno('ENOSPC');
          },
          truncate: (n) => fh.truncate(n),
          sync: () => fh.sync(),
          chmod: (m) => fh.chmod(m),
          chown: (u, g) => fh.chown(u, g),
          close: () => fh.close(),
        };
      },
    };
    await expect(syncHostsFile(file, TWO, { stateDir, fs })).rejects.toThrow(/ENOSPC/);
    expect(read(file)).toBe(NODE_HOSTS);
    expect(leftovers(path.dirname(file), stateDir)).toEqual([]);
  });
});

describe('crash safety', () => {
  // A short foreign part, so that a half-done write lands inside the block and really tears the file.
  const BASE = '127.0.0.1 localhost\n';
  const OLD = applyHostsBlock(BASE, ONE);
  const NEW = applyHostsBlock(BASE, [...TWO, e('c.tencentcloudcr.com', '10.0.0.8')]);
  const SHORTER = applyHostsBlock(BASE, [e('x.io', '1.1.1.1')]);

  it.each([
    ['rename', 'growing', NEW],
    ['rename', 'shrinking', SHORTER],
    ['in-place', 'growing', NEW],
    ['in-place', 'shrinking', SHORTER],
  ])(
    '%s strategy, %s: a crash at any step leaves the old or the new file (after recovery)',
    async (strategy, _how, next) => {
      const { file, stateDir } = fixture(OLD);
      const base = strategy === 'in-place' ? bindMountedFs(file) : nodeFs;
      // How many operations does a complete write take?
      const dry = crashingFs(Number.POSITIVE_INFINITY, base);
      await writeHostsFileSafely(file, next, { stateDir, fs: dry.fs });
      expect(read(file)).toBe(next);
      const total = dry.ops;
      expect(total).toBeGreaterThan(8);

      const outcomes = new Map<string, number>();
      for (let crashAt = 1; crashAt <= total; crashAt++) {
        writeFileSync(file, OLD, 'latin1');
        const crashing = crashingFs(crashAt, base);
        await writeHostsFileSafely(file, next, { stateDir, fs: crashing.fs }).catch(() => {});
        await crashing.closeAll();
        expect(crashing.crashed).toBe(true);
        const left = read(file);
        // The rename strategy never exposes a mix, even before recovery.
        if (strategy === 'rename') expect(left === OLD || left === next).toBe(true);
        const { action } = await recoverHostsFile(file, { stateDir });
        const after = read(file);
        expect(
          after === OLD || after === next,
          `crash at op ${crashAt}/${total}: file is neither old nor new`,
        ).toBe(true);
        expect(leftovers(path.dirname(file), stateDir)).toEqual([]);
        outcomes.set(action, (outcomes.get(action) ?? 0) + 1);
        // And the next write goes through.
        await writeHostsFileSafely(file, next, { stateDir, fs: base });
        expect(read(file)).toBe(next);
      }
      if (strategy === 'in-place') expect(outcomes.get('rolled-back')).toBeGreaterThan(0);
    },
  );

  it('recovery leaves a file alone that someone else changed since the crash', async () => {
    const { file, stateDir } = fixture(OLD);
    // Find the operation that first writes into the hosts file in place, and crash right there.
    let writeOp = 0;
    const probe = crashingFs(Number.POSITIVE_INFINITY, {
      ...bindMountedFs(file),
      open: async (f, flags, mode) => {
        const fh = await nodeFs.open(f, flags, mode);
        if (f !== file || flags !== 'r+') return fh;
        return {
          write: (buf, off, len, pos) => {
            writeOp ||= probe.ops;
            return fh.write(buf, off, len, pos);
          },
          truncate: (n) => fh.truncate(n),
          sync: () => fh.sync(),
          chmod: (m) => fh.chmod(m),
          chown: (u, g) => fh.chown(u, g),
          close: () => fh.close(),
        };
      },
    });
    await writeHostsFileSafely(file, NEW, { stateDir, fs: probe.fs });
    writeFileSync(file, OLD, 'latin1');
    const crash = crashingFs(writeOp, bindMountedFs(file));
    await writeHostsFileSafely(file, NEW, { stateDir, fs: crash.fs }).catch(() => {});
    await crash.closeAll();
    expect(read(file)).not.toBe(OLD); // torn
    expect(readdirSync(stateDir)).toHaveLength(1);
    const edited = '# rewritten by an admin\n127.0.0.1 localhost\n';
    writeFileSync(file, edited);
    expect(await recoverHostsFile(file, { stateDir })).toMatchObject({ action: 'discarded-stale' });
    expect(read(file)).toBe(edited);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  describe('SIGKILL of a real writer process', () => {
    let work: string;
    let script: string;
    const here = path.dirname(fileURLToPath(import.meta.url));
    // Large contents make the kill land inside the write often; B is shorter and lacks the final newline.
    const A = `${Array.from(
      { length: 30_000 },
      (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255} a-${i}.example.com`,
    ).join('\n')}\n`;
    const B = Array.from({ length: 18_000 }, (_, i) => `fd00::${i.toString(16)} b-${i}.example.org # b`).join(
      '\n',
    );

    beforeAll(async () => {
      work = path.join(root, 'sigkill');
      mkdirSync(work, { recursive: true });
      await build({
        entryPoints: [path.join(here, '../../../hosts-updater/crash-safe-write.ts')],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: path.join(work, 'hosts-file.mjs'),
        logLevel: 'error',
      });
      writeFileSync(path.join(work, 'a.txt'), A, 'latin1');
      writeFileSync(path.join(work, 'b.txt'), B, 'latin1');
      script = path.join(work, 'writer.mjs');
      writeFileSync(
        script,
        `import { readFileSync } from 'node:fs';
import { nodeFs, writeHostsFileSafely } from './hosts-file.mjs';
const [target, stateDir, strategy] = process.argv.slice(2);
const contents = [readFileSync(new URL('./b.txt', import.meta.url), 'latin1'), readFileSync(new URL('./a.txt', import.meta.url), 'latin1')];
const busy = Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' });
// A slow disk: writes land 8 KiB at a time, those next to the hosts file (the file itself, its temp files)
// with a pause of a millisecond, so a kill often comes in the middle of one.
const slow = (fh, pause) => ({
  write: async (b, o, l, p) => { const r = await fh.write(b, o, Math.min(l, 8192), p); await pause(); return r; },
  truncate: (n) => fh.truncate(n), sync: () => fh.sync(), chmod: (m) => fh.chmod(m), chown: (u, g) => fh.chown(u, g), close: () => fh.close(),
});
const tick = () => new Promise((r) => setImmediate(r));
const ms = () => new Promise((r) => setTimeout(r, 1));
const fs = {
  ...nodeFs,
  open: async (f, flags, mode) => slow(await nodeFs.open(f, flags, mode), f.startsWith(stateDir) ? tick : ms),
  // The in-place runs see the hosts file as a bind mount: rename onto it is refused.
  rename: async (a, b) => { if (strategy === 'in-place' && b === target) throw busy; return nodeFs.rename(a, b); },
};
process.stdout.write('ready\\n');
for (let i = 0; ; i++) await writeHostsFileSafely(target, contents[i % 2], { stateDir, fs });
`,
      );
    });

    async function runAndKill(target: string, stateDir: string, strategy: string): Promise<void> {
      const child: ChildProcess = spawn(process.execPath, [script, target, stateDir, strategy], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout?.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      });
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }

    it('50 kills at random points: always the old or the new file, never a broken one', {
      timeout: 120_000,
    }, async () => {
      const seen = { midWrite: 0, torn: 0, actions: new Map<string, number>() };
      for (let run = 0; run < 50; run++) {
        const strategy = run % 2 === 0 ? 'rename' : 'in-place';
        const dir = path.join(work, `run-${run}`);
        const stateDir = path.join(dir, 'state');
        mkdirSync(stateDir, { recursive: true });
        const target = path.join(dir, 'hosts');
        writeFileSync(target, A, 'latin1');
        await runAndKill(target, stateDir, strategy);
        const left = read(target);
        if (strategy === 'rename') {
          expect(left === A || left === B, `run ${run}: the rename strategy left a mix`).toBe(true);
        } else if (left !== A && left !== B) {
          seen.torn++;
        }
        if (leftovers(dir, stateDir).length > 0) seen.midWrite++;
        const { action } = await recoverHostsFile(target, { stateDir });
        seen.actions.set(action, (seen.actions.get(action) ?? 0) + 1);
        const after = read(target);
        expect(after === A || after === B, `run ${run} (${strategy}): file is neither old nor new`).toBe(
          true,
        );
        expect(leftovers(dir, stateDir)).toEqual([]);
        rmSync(dir, { recursive: true, force: true });
      }
      console.info(
        `SIGKILL: ${seen.midWrite}/50 kills left a temp file or journal, ${seen.torn} left a torn file (repaired);`,
        'recovery:',
        Object.fromEntries(seen.actions),
      );
      // The kills must really land inside writes, torn in-place writes included, for this test to mean anything.
      expect(seen.midWrite).toBeGreaterThan(0);
      expect(seen.torn).toBeGreaterThan(0);
    });
  });
});

describe('readHostsFile', () => {
  it('reads bytes as a byte string that writes back identically', async () => {
    const { file, stateDir } = fixture('');
    const bytes = Buffer.from([0x23, 0x20, 0xe6, 0x9d, 0xb1, 0xff, 0x00, 0x0a]);
    writeFileSync(file, bytes);
    const text = await readHostsFile(file);
    writeFileSync(file, 'x');
    await writeHostsFileSafely(file, text, { stateDir });
    expect(readFileSync(file)).toEqual(bytes);
  });
});
