import { closeSync, constants, futimesSync, mkdirSync, openSync, writeSync } from 'node:fs'
import path from 'node:path'
import type { ReadEntry } from 'tar'

// O_EXCL: a path is created, never written through (an existing file or a symlink at it fails with EEXIST).
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
/** Directories the archive does not list (parents of its files): 0777 less the umask, as tar makes them. */
const IMPLICIT_DIR_MODE = 0o777

/**
 * Writes the regular files and directories of a tar stream into a fresh staging directory, synchronously,
 * as tar's parser hands them over. Each entry must already be vetted (src/release/extract.ts: only files
 * and directories, relative paths without `..`, each path once, no setuid/setgid; symlinks come after
 * everything else), so nothing on the way to a path can be a symlink, and a file is one open(2), its
 * writes, futimes(2) and close(2).
 *
 * tar's own unpack (UnpackSync) checks every path with an lstat(2) of the entry and a mkdir(2) and
 * lstat(2) of each of its parent directories, throwing and catching an error for each: 50,000 files four
 * directories deep took 5.2-5.8 s to extract on ext4, 39 % of a CPU profile in those calls. Here a
 * directory is made once: 4.0-4.2 s (GNU tar 2.9-3.0 s, without flushing).
 *
 * Files get the archive's mode (less the umask, as open(2) applies it) and its mtime; directories the
 * archive's mode with owner rwx (as tar), their mtime left at creation (writing into them changes it
 * anyway). Nothing is chowned: the extracting user owns everything.
 */
export class EntryWriter {
  readonly #root: string
  readonly #onError: (err: Error, entryPath: string) => void
  /** Relative paths of the directories made so far ('' is the root, which exists). */
  readonly #dirs = new Set<string>([''])
  /** The file being written, closed on failure by abort(). */
  #fd: number | undefined

  constructor(root: string, onError: (err: Error, entryPath: string) => void) {
    this.#root = root
    this.#onError = onError
  }

  /**
   * Writes `entry` at `rel` (its normalized path). A system call's error goes to onError with the entry's
   * path, and the entry is drained: EEXIST or ENOTDIR there means the archive has a file where it also has
   * a directory.
   */
  write(entry: ReadEntry, rel: string): void {
    try {
      if (entry.type === 'Directory') {
        this.#makeDir(rel, ((entry.mode ?? IMPLICIT_DIR_MODE) & 0o7777) | 0o700)
        entry.resume()
      } else {
        this.#writeFile(entry, rel)
      }
    } catch (err) {
      this.#failed(entry, err as Error)
    }
  }

  /** Closes the file being written, if any (the extraction failed elsewhere). */
  abort(): void {
    if (this.#fd === undefined) return
    const fd = this.#fd
    this.#fd = undefined
    try {
      closeSync(fd)
    } catch {
      // already failing: the first error is the news
    }
  }

  #writeFile(entry: ReadEntry, rel: string): void {
    this.#makeDir(path.posix.dirname(rel), IMPLICIT_DIR_MODE)
    const mode = typeof entry.mode === 'number' ? entry.mode & 0o7777 : 0o666
    const fd = openSync(path.join(this.#root, rel), CREATE_FILE, mode)
    this.#fd = fd
    entry.on('data', (chunk: Buffer) => {
      if (this.#fd !== fd) return // failed: the rest of the entry is drained
      try {
        for (let at = 0; at < chunk.length; ) {
          const written = writeSync(fd, chunk, at, chunk.length - at)
          // A regular file takes what it is given unless the call fails; never loop on nothing written.
          if (written <= 0) throw new Error(`write(2) of ${entry.path} wrote nothing`)
          at += written
        }
      } catch (err) {
        this.#failed(entry, err as Error)
      }
    })
    entry.on('end', () => {
      if (this.#fd !== fd) return
      try {
        if (entry.mtime) futimesSync(fd, entry.atime ?? new Date(), entry.mtime)
        this.#fd = undefined
        closeSync(fd)
      } catch (err) {
        this.#failed(entry, err as Error)
      }
    })
  }

  /** Makes `rel` (and any missing parent) unless made already. */
  #makeDir(rel: string, mode: number): void {
    if (rel === '.') rel = ''
    if (this.#dirs.has(rel)) return
    this.#makeDir(path.posix.dirname(rel), IMPLICIT_DIR_MODE)
    try {
      mkdirSync(path.join(this.#root, rel), mode)
    } catch (err) {
      // A file's parent made it before the directory's own entry: it stays as made, as with tar.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    this.#dirs.add(rel)
  }

  #failed(entry: ReadEntry, err: Error): void {
    this.abort()
    entry.resume()
    this.#onError(err, entry.path)
  }
}
