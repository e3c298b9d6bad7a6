import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDirectory } from '../atomic-file.ts'

/** Files flushed at once: the filesystem overlaps their writeback; more only queue in libuv's pool. */
const SYNC_CONCURRENCY = 8

/**
 * Flushes an extracted tree to disk before it can become `current`: every regular file's data
 * (fdatasync), then every directory (fsync). Switching `current` is a journaled rename, but the files'
 * data may still be only in the page cache (ext4 allocates blocks late), so a power loss just after a
 * switch could leave `current` pointing at empty or truncated files, which a host would then start from
 * at boot. dpkg flushes what it unpacks for the same reason.
 */
export async function syncTree(root: string): Promise<void> {
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
