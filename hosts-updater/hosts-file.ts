// The node's hosts file: validate the entries, set the managed block (hosts-block.ts), write it back crash-safely
// (crash-safe-write.ts).
import { type HostEntry, type RejectedEntry, validateEntries } from '../shared/contracts/updater-config.js';
import {
  HostsFileDetachedError,
  type HostsIoOptions,
  nodeFs,
  readHostsFile,
  recoverHostsFile,
  type WriteResult,
  writeHostsFileSafely,
} from './crash-safe-write.js';
import { applyHostsBlock } from './hosts-block.js';

export interface SyncResult extends WriteResult {
  /** Entries actually in the block after the sync. */
  entries: HostEntry[];
  rejected: RejectedEntry[];
}

/**
 * Reads the hosts file, sets the managed block to `entries` (null: no block) and writes it back safely.
 * Throws HostsFileDetachedError when the file was replaced behind our bind mount (writes would be lost).
 */
export async function syncHostsFile(
  file: string,
  entries: readonly HostEntry[] | null,
  options: HostsIoOptions = {},
): Promise<SyncResult> {
  const fs = options.fs ?? nodeFs;
  const { valid, rejected } = validateEntries(entries ?? []);
  // Repair an interrupted write before reading: the new content must not be computed from a torn file.
  await recoverHostsFile(file, options);
  // A host tool that replaced the file by rename leaves our single-file bind mount on the old inode.
  if ((await fs.stat(file)).nlink === 0) {
    throw new HostsFileDetachedError(`${file} was replaced on the host: this mount shows a deleted file`);
  }
  const original = await readHostsFile(file, fs);
  const result = await writeHostsFileSafely(file, applyHostsBlock(original, valid), options);
  return { ...result, entries: valid, rejected };
}
