import { randomBytes } from 'node:crypto'
import { createWriteStream, type Stats } from 'node:fs'
import { lstat, readdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { Pack } from 'tar'
import type { WriteEntry } from 'tar'
import { RookeryError, UsageError } from '../errors.ts'

/** The mtime written for every file entry, so a rebuilt directory packs to the same bytes. */
export const PACK_MTIME = new Date('2000-01-01T00:00:00Z')

// zlib's default level, fixed so that an upgrade of a default can't change the bytes of a rebuilt release.
const GZIP_LEVEL = 6

export interface PackOptions {
  /** Called after each regular file is written and once at the end; throttling is the caller's job. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** What went into a tarball: the number of regular files and their total size in bytes. */
export interface PackResult {
  files: number
  bytes: number
}

interface TreeEntry {
  rel: string
  stats: Stats
}

/**
 * Packs `dir` into a deterministic gzip tarball at `outFile`: entries sorted byte-wise by their stored path
 * (relative, directories included and ending in "/"), owner 0 with no user/group names, fixed mtimes, permission bits kept, symlinks
 * stored as symlinks, `.git` skipped at any depth. Writes a temporary file beside `outFile` and renames it,
 * so a failed pack leaves nothing behind. Throws a UsageError for a missing `dir`, a special file (socket,
 * fifo, device) or a setuid/setgid file, which extraction would refuse anyway, and for a name that is not
 * valid UTF-8 (tar's paths here are strings).
 */
export async function packDirectory(dir: string, outFile: string, opts: PackOptions = {}): Promise<PackResult> {
  const root = path.resolve(dir)
  const rootStats = await stat(root).catch(() => undefined)
  if (!rootStats) throw new UsageError(`cannot pack ${dir}: no such directory`)
  if (!rootStats.isDirectory()) throw new UsageError(`cannot pack ${dir}: not a directory`)

  const tree = await listTree(root).catch((err: unknown) => {
    if (err instanceof RookeryError) throw err
    throw new RookeryError('ROOKERY_PACK_IO', `cannot read ${dir}: ${(err as Error).message}`, { cause: err })
  })
  const files = tree.filter((e) => e.stats.isFile())
  const totalBytes = files.reduce((sum, e) => sum + e.stats.size, 0)
  let doneBytes = 0

  const out = path.resolve(outFile)
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeTarball(tmp, tree.map((e) => e.rel), {
      cwd: root,
      gzip: { level: GZIP_LEVEL },
      portable: true,
      mtime: PACK_MTIME,
      noDirRecurse: true,
      strict: true,
      // tar uses the stats listTree checked (and adjusted) instead of lstat-ing again
      statCache: new Map(tree.map((e) => [path.join(root, e.rel), e.stats])),
      onWriteEntry: (entry: WriteEntry) => {
        if (entry.type !== 'File' || !opts.onProgress) return
        const size = entry.stat?.size ?? 0
        entry.on('end', () => {
          doneBytes += size
          opts.onProgress?.(doneBytes, totalBytes)
        })
      },
    })
    await rename(tmp, out)
  } catch (err) {
    await rm(tmp, { force: true })
    throw new RookeryError('ROOKERY_PACK_IO', `cannot pack ${dir} into ${outFile}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  opts.onProgress?.(totalBytes, totalBytes)
  return { files: files.length, bytes: totalBytes }
}

/**
 * Writes the tar of `paths` (relative to `options.cwd`, in this order) to `file`. Each path goes to
 * Pack.add as is: tar's create() would take one starting with "@" (an npm scope directory at the top of
 * a release) for an archive whose entries it adds instead.
 */
function writeTarball(file: string, paths: string[], options: PackOptionsOfTar): Promise<void> {
  return new Promise((resolve, reject) => {
    const pack = new Pack(options)
    const out = createWriteStream(file)
    const fail = (err: unknown) => {
      out.destroy()
      reject(err)
    }
    pack.on('error', fail)
    out.on('error', fail)
    out.on('close', resolve)
    pack.pipe(out)
    for (const p of paths) pack.add(p)
    pack.end()
  })
}

type PackOptionsOfTar = ConstructorParameters<typeof Pack>[0]

/** Every entry under `root` except `.git`, with paths relative to `root` using `/`, sorted as stored. */
async function listTree(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = []
  const walk = async (relDir: string): Promise<void> => {
    for (const raw of await readdir(path.join(root, relDir), { encoding: 'buffer' })) {
      const name = raw.toString('utf8')
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        // Read as a string, the name comes back with U+FFFD in place of its bytes: no such file.
        const shown = path.join(root, relDir, escapeBytes(raw))
        throw new UsageError(`cannot pack ${shown}: its name is not valid UTF-8, which every path in a release must be`, {
          hint: 'rename it (convmv converts names from another encoding)',
        })
      }
      if (name === '.git') continue
      const rel = relDir === '' ? name : `${relDir}/${name}`
      const abs = path.join(root, rel)
      const stats = await lstat(abs)
      if (stats.isDirectory()) {
        // A setgid directory only means "new files inherit my group" on the build host: meaningless elsewhere,
        // and extraction refuses setuid/setgid modes, so drop the bits rather than fail.
        stats.mode &= ~0o6000
        out.push({ rel, stats })
        await walk(rel)
      } else if (stats.isFile() || stats.isSymbolicLink()) {
        if (stats.isFile() && stats.mode & 0o6000) {
          throw new UsageError(`cannot pack ${abs}: setuid/setgid files are not allowed in a release`, {
            hint: `chmod u-s,g-s ${abs}`,
          })
        }
        // tar stores a second path to an inode (nlink > 1) as a hardlink entry, which extraction refuses, and
        // npm/pnpm caches hardlink freely: make each path look like the only one, so it is stored in full.
        // (This also avoids a tar hang: a pre-stat'd hardlinked file gets two entries and the pack stalls.)
        stats.nlink = 1
        out.push({ rel, stats })
      } else {
        throw new UsageError(`cannot pack ${abs}: ${specialKind(stats)} cannot be part of a release`)
      }
    }
  }
  await walk('')
  // Byte-wise on the path as stored (directories end in "/", so each precedes its content), not
  // localeCompare: the order must not depend on the packing host's locale or ICU version.
  const keyed = out.map((e) => ({ key: Buffer.from(e.stats.isDirectory() ? `${e.rel}/` : e.rel), e }))
  return keyed.sort((a, b) => Buffer.compare(a.key, b.key)).map(({ e }) => e)
}

/** A file name's bytes, printable ASCII as is and every other byte as \\xNN. */
function escapeBytes(raw: Buffer): string {
  return [...raw].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')
}

function specialKind(stats: Stats): string {
  if (stats.isSocket()) return 'a socket'
  if (stats.isFIFO()) return 'a fifo'
  if (stats.isCharacterDevice()) return 'a character device'
  if (stats.isBlockDevice()) return 'a block device'
  return 'a special file'
}
