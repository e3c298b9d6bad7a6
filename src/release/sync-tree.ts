import { execFile } from 'node:child_process'
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDirectory } from '../atomic-file.ts'

/**
 * What flushing one file or directory on its own costs, in bytes of other dirty data syncfs would write
 * instead. Worked out from the runs on a fresh ext4 (syncTree below; docs/performance.md, seventeenth
 * session): a file on its own cost about 200-330 us more than syncfs, and syncfs about 3 ms more per MiB
 * of dirty tarball, so one file weighs 70-110 KiB. A cloud volume (slower writes, slower flushes) and
 * NVMe (both faster) should keep the same order; not measured there.
 */
export const FLUSH_COST_PER_ENTRY = 64 * 1024

/** Files flushed at once when each is flushed on its own: the filesystem overlaps their writeback. */
const SYNC_CONCURRENCY = 8

/**
 * Flushes an extracted tree to disk before it can become `current`: every regular file's data and every
 * directory. Switching `current` is a journaled rename, but the files' data may still be only in the page
 * cache (ext4 allocates blocks late), so a power loss just after a switch could leave `current` pointing
 * at empty or truncated files, which a host would then start from at boot. dpkg flushes what it unpacks
 * for the same reason.
 *
 * One syncfs(2) of the filesystem holding the tree does it all with one journal commit (`sync -f`, in its
 * own process, as Node has no syncfs; coreutils and BusyBox both have it). 10,000 files of 0.7-11 KB on a
 * fresh ext4: extraction 1.0-1.1 s, against 3.1-4.4 s flushing each file on its own (a journal commit per
 * fdatasync, three thread-pool round trips per file). But syncfs also waits for everything else dirty on that
 * filesystem, above all the tarball just downloaded there: 1 GiB in 16 files extracted in 6.2-9.8 s so,
 * against 2.7-7.0 s each file on its own. So syncfs is used when what else is dirty (`otherDirtyBytes`,
 * e.g. the tarball's size when it is on the same filesystem) is less than FLUSH_COST_PER_ENTRY for each
 * entry of the tree, and each entry is flushed on its own otherwise.
 * Where syncfs fails (coreutils before 8.24, e.g. RHEL 7 and Amazon Linux 2, have no `-f`; no
 * `sync` on the PATH; an I/O error), each entry is flushed on its own, which also names the file an I/O
 * error is about.
 */
export async function syncTree(root: string, size: { entries: number; otherDirtyBytes: number }): Promise<FlushMethod> {
  const syncfsIsCheaper = size.otherDirtyBytes < size.entries * FLUSH_COST_PER_ENTRY
  if (syncfsIsCheaper && (await syncFileSystem(root))) return 'filesystem'
  await syncEachEntry(root)
  return 'each entry'
}

/** How a tree was flushed: one syncfs of its filesystem, or each file and directory on its own. */
export type FlushMethod = 'filesystem' | 'each entry'

/** syncfs(2) of the filesystem holding `dir`; false if `sync -f` could not run or failed. */
function syncFileSystem(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], (err) => resolve(!err))
  })
}

/** fdatasync of every regular file under `root`, then fsync of every directory. */
async function syncEachEntry(root: string): Promise<void> {
  const files: string[] = []
  const dirs: string[] = [root]
  for (let i = 0; i < dirs.length; i++) {
    for (const entry of await readdir(dirs[i]!, { withFileTypes: true })) {
      const full = join(dirs[i]!, entry.name)
      if (entry.isDirectory()) dirs.push(full)
      else if (entry.isFile()) files.push(full)
    }
  }
  let next = 0
  const worker = async () => {
    while (next < files.length) {
      const handle = await open(files[next++]!, 'r')
      try {
        await handle.datasync()
      } finally {
        await handle.close()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, files.length) }, worker))
  for (const dir of dirs) await syncDirectory(dir)
}
