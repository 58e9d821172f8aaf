// Crash-safe reads and writes of the node's hosts file (a journal, rename or in-place overwrite, recovery).
//
// Content is a "byte string" (latin1: one char per byte), as produced by hosts-block.ts.
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/** The slice of node:fs/promises the writer uses; injectable to simulate bind mounts and crashes. */
export interface HostsFs {
  readFile(file: string): Promise<Buffer>;
  open(file: string, flags: string, mode?: number): Promise<HostsFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  stat(file: string): Promise<{ mode: number; uid: number; gid: number; nlink: number }>;
  realpath(file: string): Promise<string>;
  mkdir(dir: string, options: { recursive: true }): Promise<unknown>;
  readdir(dir: string): Promise<string[]>;
}

export interface HostsFileHandle {
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  truncate(length: number): Promise<void>;
  sync(): Promise<void>;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  close(): Promise<void>;
}

export const nodeFs: HostsFs = {
  readFile: (file) => fsp.readFile(file),
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.unlink(file),
  stat: (file) => fsp.stat(file),
  realpath: (file) => fsp.realpath(file),
  mkdir: (dir, options) => fsp.mkdir(dir, options),
  readdir: (dir) => fsp.readdir(dir),
};

export interface HostsIoOptions {
  /**
   * Where the in-place strategy keeps its backup journal: a directory on the same machine that survives
   * restarts (in the DaemonSet a hostPath). Default: the hosts file's own directory.
   */
  stateDir?: string | undefined;
  fs?: HostsFs | undefined;
}

export type WriteStrategy = 'unchanged' | 'rename' | 'in-place';

export interface WriteResult {
  strategy: WriteStrategy;
  written: boolean;
}

export type RecoveryAction =
  | 'none'
  /** The interrupted write had finished: the file holds the new content. */
  | 'completed'
  /** The interrupted write had not touched the file yet. */
  | 'not-started'
  /** The file was torn by an interrupted write: the backup (old content) was written back. */
  | 'rolled-back'
  /** The file matched neither version and does not look torn: someone else changed it; left alone. */
  | 'discarded-stale'
  /** The journal was unreadable (it is written by rename, so only outside damage does this): removed. */
  | 'discarded-corrupt';

export interface RecoveryResult {
  action: RecoveryAction;
  removedTempFiles: number;
}

/** The hosts file we write is no longer linked into any directory: a stale single-file bind mount. */
export class HostsFileDetachedError extends Error {
  override readonly name = 'HostsFileDetachedError';
}

const TEMP_MARK = '.tcr-hosts-updater-';
/** Creating a temp file next to the target fails like this on a read-only directory (single-file mount). */
const CANNOT_CREATE_TEMP = new Set(['EROFS', 'EACCES', 'EPERM']);
/** rename(2) onto a bind-mounted file fails with EBUSY (or EXDEV/EPERM depending on kernel and runtime). */
const CANNOT_RENAME = new Set(['EBUSY', 'EXDEV', 'EPERM', 'EACCES', 'EROFS']);

const Journal = z.object({
  version: z.literal(1),
  target: z.string(),
  oldSha256: z.string(),
  newSha256: z.string(),
  /** Full old (backup) and new content, latin1. */
  old: z.string(),
  new: z.string(),
});
type Journal = z.infer<typeof Journal>;

class FallBackToInPlace extends Error {}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function toBytes(content: string): Buffer {
  const bytes = Buffer.from(content, 'latin1');
  // Characters above U+00FF would be silently mangled by latin1: refuse them instead.
  if (bytes.toString('latin1') !== content) {
    throw new TypeError('hosts content must be a byte string (latin1, as returned by readHostsFile)');
  }
  return bytes;
}

function journalPathFor(stateDir: string, target: string): string {
  return path.join(stateDir, `hosts-updater-${sha256(target).slice(0, 16)}.journal.json`);
}

function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}${TEMP_MARK}${randomBytes(6).toString('hex')}.tmp`,
  );
}

async function writeFully(fh: HostsFileHandle, data: Buffer): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/** Makes a rename/unlink in `dir` durable. Best effort: not every platform can fsync a directory. */
async function syncDirectory(fs: HostsFs, dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // EISDIR/EINVAL/EACCES: the data itself is fsynced; only the directory entry may lag.
  }
}

/** One write of the full content from offset 0, ftruncate, fsync. */
async function overwriteHandle(fh: HostsFileHandle, data: Buffer): Promise<void> {
  await writeFully(fh, data);
  await fh.truncate(data.length);
  await fh.sync();
}

async function overwriteInPlace(fs: HostsFs, file: string, data: Buffer): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await overwriteHandle(fh, data);
  } finally {
    await fh.close();
  }
}

/** Writes a whole new file next to `file` and renames it over; the classic atomic replace. */
async function writeNewFile(fs: HostsFs, file: string, data: Buffer, mode: number): Promise<void> {
  const fh = await fs.open(file, 'wx', mode);
  try {
    await writeFully(fh, data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeJournal(
  fs: HostsFs,
  stateDir: string,
  journalPath: string,
  journal: Journal,
): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const temp = `${journalPath}${TEMP_MARK}${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNewFile(fs, temp, Buffer.from(JSON.stringify(journal), 'utf8'), 0o600);
    await fs.rename(temp, journalPath);
  } catch (error) {
    await fs.unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(fs, stateDir);
}

async function removeJournal(fs: HostsFs, stateDir: string, journalPath: string): Promise<void> {
  await fs.unlink(journalPath);
  await syncDirectory(fs, stateDir);
}

/** Could `current` be what an interrupted in-place write of `next` over `old` left behind? */
function looksTorn(current: Buffer, old: Buffer, next: Buffer): boolean {
  if (current.length > Math.max(old.length, next.length)) return false;
  for (let i = 0; i < current.length; i++) {
    const byte = current[i];
    if (byte !== old[i] && byte !== next[i] && byte !== 0) return false;
  }
  return true;
}

async function removeStaleTempFiles(fs: HostsFs, dir: string, prefix: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (name.startsWith(prefix) && name.includes(TEMP_MARK) && name.endsWith('.tmp')) {
      await fs.unlink(path.join(dir, name)).then(
        () => removed++,
        () => {},
      );
    }
  }
  return removed;
}

/** Reads the hosts file as a byte string (see the top of this file). */
export async function readHostsFile(file: string, fs: HostsFs = nodeFs): Promise<string> {
  return (await fs.readFile(file)).toString('latin1');
}

/**
 * Finishes or undoes a write that a crash interrupted, from the journal the in-place strategy leaves while it
 * works, and removes temp files left by the rename strategy. Run it at start-up (writeHostsFileSafely also
 * runs it first). Never writes anything when there is nothing to recover.
 */
export async function recoverHostsFile(file: string, options: HostsIoOptions = {}): Promise<RecoveryResult> {
  const fs = options.fs ?? nodeFs;
  const target = await fs.realpath(file);
  const stateDir = options.stateDir ?? path.dirname(target);
  const journalPath = journalPathFor(stateDir, target);
  const removedTempFiles =
    (await removeStaleTempFiles(fs, path.dirname(target), `.${path.basename(target)}`)) +
    (await removeStaleTempFiles(fs, stateDir, path.basename(journalPath)));

  let raw: Buffer;
  try {
    raw = await fs.readFile(journalPath);
  } catch (error) {
    // ENOTDIR: the state directory's path runs through a file; no journal can exist there either.
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR')
      return { action: 'none', removedTempFiles };
    throw error;
  }
  let journal: Journal | undefined;
  try {
    journal = Journal.parse(JSON.parse(raw.toString('utf8')));
  } catch {
    journal = undefined;
  }
  const old = journal && Buffer.from(journal.old, 'latin1');
  const next = journal && Buffer.from(journal.new, 'latin1');
  if (!journal || !old || !next || sha256(old) !== journal.oldSha256 || sha256(next) !== journal.newSha256) {
    await removeJournal(fs, stateDir, journalPath);
    return { action: 'discarded-corrupt', removedTempFiles };
  }

  const current = await fs.readFile(target);
  const digest = sha256(current);
  let action: RecoveryAction;
  if (digest === journal.newSha256) {
    // The write went through; make sure it is on disk before forgetting the backup.
    const fh = await fs.open(target, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    action = 'completed';
  } else if (digest === journal.oldSha256) {
    action = 'not-started';
  } else if (looksTorn(current, old, next)) {
    await overwriteInPlace(fs, target, old);
    action = 'rolled-back';
  } else {
    action = 'discarded-stale';
  }
  await removeJournal(fs, stateDir, journalPath);
  return { action, removedTempFiles };
}

async function replaceByRename(
  fs: HostsFs,
  target: string,
  data: Buffer,
  info: { mode: number; uid: number; gid: number },
): Promise<boolean> {
  const temp = tempPathFor(target);
  const mode = info.mode & 0o7777;
  let fh: HostsFileHandle;
  try {
    fh = await fs.open(temp, 'wx', mode);
  } catch (error) {
    if (CANNOT_CREATE_TEMP.has(codeOf(error) ?? '')) return false;
    throw error;
  }
  try {
    try {
      await writeFully(fh, data);
      await fh.chmod(mode); // the umask may have narrowed the mode given to open
      if (info.uid !== process.geteuid?.() || info.gid !== process.getegid?.()) {
        // A replacement we cannot give the original owner would change the file's ownership: go in place.
        await fh.chown(info.uid, info.gid).catch((error: unknown) => {
          throw codeOf(error) === 'EPERM' ? new FallBackToInPlace() : error;
        });
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(temp, target);
  } catch (error) {
    await fs.unlink(temp).catch(() => {});
    if (error instanceof FallBackToInPlace || CANNOT_RENAME.has(codeOf(error) ?? '')) return false;
    throw error;
  }
  await syncDirectory(fs, path.dirname(target));
  return true;
}

/**
 * Replaces the content of `file` so that a crash at any point leaves the old or the new content (after
 * recovery, see below). Nothing is written when the content is already `content`.
 *
 * 1. Rename strategy: write a temp file in the same directory, fsync, rename over the file, fsync the
 *    directory. Readers see the old or the new file, never a mix; no recovery needed.
 * 2. In-place strategy, when the temp file cannot be created (read-only directory) or the rename is refused
 *    (EBUSY/EXDEV/EPERM: the file is a bind mount): first a journal with the full old content (the backup)
 *    and both checksums goes to `stateDir` (itself written by rename + fsync), then the file is overwritten
 *    with one write of the full content + ftruncate + fsync, then the journal is removed. A crash in the
 *    middle leaves a torn file *and* the journal; recoverHostsFile restores the backup. If the write fails
 *    without a crash, the old content is written back at once. Readers may see a torn file for the
 *    duration of the write (microseconds for a hosts file).
 */
export async function writeHostsFileSafely(
  file: string,
  content: string,
  options: HostsIoOptions = {},
): Promise<WriteResult> {
  const fs = options.fs ?? nodeFs;
  const next = toBytes(content);
  // Following symlinks: renaming over a symlink would replace the link, not the file it points to.
  const target = await fs.realpath(file);
  const stateDir = options.stateDir ?? path.dirname(target);
  await recoverHostsFile(target, { stateDir, fs });

  const current = await fs.readFile(target);
  if (current.equals(next)) return { strategy: 'unchanged', written: false };
  const info = await fs.stat(target);
  if (info.nlink === 0) throw new HostsFileDetachedError(`${file} is no longer linked on its file system`);

  if (await replaceByRename(fs, target, next, info)) return { strategy: 'rename', written: true };

  const journalPath = journalPathFor(stateDir, target);
  // Opened first: a file we may not write fails here, before any journal exists.
  const fh = await fs.open(target, 'r+');
  try {
    // Never overwrite in place without a durable backup: if the journal cannot be written, nothing is touched.
    await writeJournal(fs, stateDir, journalPath, {
      version: 1,
      target,
      oldSha256: sha256(current),
      newSha256: sha256(next),
      old: current.toString('latin1'),
      new: content,
    });
    try {
      await overwriteHandle(fh, next);
    } catch (error) {
      try {
        await overwriteHandle(fh, current);
        await removeJournal(fs, stateDir, journalPath);
      } catch {
        // The journal stays; recoverHostsFile (next write or next start) repairs the file.
      }
      throw error;
    }
  } finally {
    await fh.close();
  }
  // The new content is durable; a journal left behind by a failing unlink is resolved by the next recovery.
  await removeJournal(fs, stateDir, journalPath).catch(() => {});
  return { strategy: 'in-place', written: true };
}
