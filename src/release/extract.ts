import { createHash, randomBytes, type Hash } from 'node:crypto'
import { lstat, mkdir, open, rename, rm, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { Parser } from 'tar'
import type { ReadEntry } from 'tar'
import { RookeryError, VerifyError } from '../errors.ts'
import { sha256File } from './hash.ts'
import { syncTree, type FlushMethod } from './sync-tree.ts'
import { EntryWriter } from './write-entries.ts'
import { syncDirectory } from '../atomic-file.ts'

/** Bounds on what one release may unpack to: a decompression bomb fails instead of filling the disk. */
export interface ExtractLimits {
  /** Total size of all entries, in bytes. */
  maxBytes: number
  /** Number of entries, directories included. */
  maxEntries: number
}

/** 20 GiB and a million entries. */
const IO_CHUNK = 1024 * 1024

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 20 * 1024 ** 3, maxEntries: 1_000_000 }

/**
 * A tarball still being written front to back (a download in progress): its final size, and a wait for
 * its first `bytes` bytes to be on disk, which rejects if they never will be (the download failed).
 */
export interface GrowingFile {
  size: number
  onDisk: (bytes: number) => Promise<void>
}

/**
 * What was unpacked: the number of regular files and their total size in bytes; how the tree was flushed
 * to disk, and how long that took.
 */
export interface ExtractResult {
  files: number
  bytes: number
  flushed: FlushMethod
  flushMs: number
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink'])

// Paths deeper than this are refused, as tar's own unpack does (its maxDepth).
const MAX_DEPTH = 1024

// A symlink resolving through more links than this is refused, as the kernel would (ELOOP).
const MAX_LINK_HOPS = 40
const ESCAPES = 'resolves outside the release (or loops)'

/**
 * Extracts the gzip tarball into a staging directory beside `targetDir`, then renames it to `targetDir`.
 * Refuses (VerifyError ROOKERY_UNSAFE_ARCHIVE, naming the entry) hardlinks, devices, fifos, absolute or `..`
 * paths, symlinks resolving outside the release, setuid/setgid modes, duplicate paths, and archives over
 * `limits`; a corrupt archive is VerifyError ROOKERY_BAD_ARCHIVE; a disk or permission failure is
 * RookeryError ROOKERY_EXTRACT_IO. On any failure nothing is left behind. Throws ROOKERY_EXTRACT_EXISTS if
 * `targetDir` exists. Files get their archive mode (less the umask) and the extracting user as owner.
 *
 * The tree is on disk (src/release/sync-tree.ts) before it is renamed to `targetDir`, and the rename too.
 *
 * With `expected.sha256` the tarball's SHA-256 is computed from the same reads that feed the extraction
 * (one pass over the file instead of two), and the staging directory becomes `targetDir` only if it
 * matches: otherwise VerifyError ROOKERY_CHECKSUM_MISMATCH, and nothing is left behind. A tarball that
 * fails to extract is checked against the digest too, so a corrupt download is reported as such rather
 * than as a bad release.
 *
 * With `growing` the tarball may still be arriving: each read waits until its bytes are on disk, so the
 * extraction follows a download instead of starting after it. Nothing about what may leave staging
 * changes: that still waits for the whole tarball's SHA-256.
 */
export async function extractRelease(
  tarball: string,
  targetDir: string,
  limits: Partial<ExtractLimits> = {},
  expected?: { sha256: string },
  growing?: GrowingFile,
): Promise<ExtractResult> {
  const target = path.resolve(targetDir)
  if (await lstat(target).then(() => true, () => false)) {
    throw new RookeryError('ROOKERY_EXTRACT_EXISTS', `cannot extract ${tarball}: ${target} already exists`)
  }
  const staging = path.join(
    path.dirname(target),
    `.staging-${path.basename(target)}-${randomBytes(6).toString('hex')}`,
  )
  try {
    await mkdir(staging)
  } catch (err) {
    throw ioError(tarball, err)
  }
  try {
    const digest = expected ? { expected: expected.sha256, hash: createHash('sha256'), bytes: 0 } : undefined
    const { entries, files, bytes } = await unpackInto(tarball, staging, { ...DEFAULT_EXTRACT_LIMITS, ...limits }, digest, growing)
    if (digest) await checkDigest(tarball, digest, growing)
    // The tarball was just written (downloaded): on the tree's filesystem, a flush of it all would wait for it too.
    const [tarballStat, stagingStat] = await Promise.all([stat(tarball), stat(staging)])
    const flushStarted = performance.now()
    const flushed = await syncTree(staging, { entries, otherDirtyBytes: tarballStat.dev === stagingStat.dev ? tarballStat.size : 0 })
    const flushMs = Math.round(performance.now() - flushStarted)
    await rename(staging, target).catch((err: unknown) => {
      const code = (err as { code?: unknown }).code
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw new RookeryError('ROOKERY_EXTRACT_EXISTS', `cannot extract ${tarball}: ${target} appeared meanwhile`)
      }
      throw ioError(tarball, err)
    })
    await syncDirectory(path.dirname(target))
    return { files, bytes, flushed, flushMs }
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    if (expected && err instanceof VerifyError && err.code !== 'ROOKERY_CHECKSUM_MISMATCH') {
      // A growing tarball is hashed once it is whole; if it never will be, the download's error is the news.
      const whole = growing ? await growing.onDisk(growing.size).then(() => true, () => false) : true
      const actual = whole ? await sha256File(tarball).catch(() => undefined) : undefined
      if (actual !== undefined && actual !== expected.sha256) throw checksumMismatch(tarball, actual, expected.sha256)
    }
    const error = err instanceof RookeryError ? err : ioError(tarball, err)
    // A full or read-only disk is about where the release goes: name that place, not the tarball.
    if (error.code === 'ROOKERY_EXTRACT_IO' && error.cause instanceof Error) {
      throw new RookeryError('ROOKERY_EXTRACT_IO', `cannot extract ${path.basename(tarball)} into ${target}: ${error.cause.message}`, { cause: error.cause })
    }
    throw error
  }
}

/**
 * Streams the tarball through our own gunzip into tar's parser (see feedUnpack), whose entries, once
 * checked, are written synchronously (src/release/write-entries.ts), then creates the symlinks.
 * Decompressing ourselves lets a refusal stop the input cleanly, between two slices: no write is in
 * flight then, so the staging directory can be deleted at once.
 */
function unpackInto(tarball: string, staging: string, limits: ExtractLimits, digest?: RunningDigest, growing?: GrowingFile): Promise<{ files: number; bytes: number; entries: number }> {
  return new Promise((resolve, reject) => {
    let failure: Error | undefined
    let entries = 0
    let total = 0 // declared size of every entry, for the limit
    let files = 0
    let bytes = 0 // size of regular files, for the result
    const seen = new Set<string>()
    const links = new Map<string, string>() // path -> target, in archive order
    const deferred = new WeakSet<ReadEntry>()

    // 1 MiB reads (feed) and gunzip output chunks instead of 64 and 16 KiB: each chunk of a file is written
    // with its own write(2), and streams pay per chunk. Measured on 64 MiB: 0.46 -> 0.12 CPU seconds.
    const gunzip = createGunzip({ chunkSize: IO_CHUNK })
    const fail = (err: Error): void => {
      if (failure) return
      failure = err
      // Entries already parsed are refused by the filter from here on; the teardown itself waits for a
      // fresh tick so it does not run inside tar's parse loop. The reader stops at its next read. The
      // writes are synchronous: only the file being written is open, so the staging directory can go at
      // once. The parser is left as it is: what it still holds is garbage.
      setImmediate(() => {
        gunzip.destroy()
        writer.abort()
        reject(err)
      })
    }
    const refuse = (entryPath: string, reason: string): false => {
      fail(refusal(tarball, entryPath, reason))
      return false
    }

    const check = (entry: ReadEntry): boolean => {
      if (failure) return false
      const p = entry.path
      if (!ALLOWED_TYPES.has(entry.type)) return refuse(p, `${entry.type} entries are not allowed`)
      if (isAbsolute(p)) return refuse(p, 'absolute path')
      const rel = normalize(p)
      const parts = rel.split('/')
      if (parts.includes('..')) return refuse(p, "path contains '..'")
      if (parts.length > MAX_DEPTH) return refuse(p, `more than ${MAX_DEPTH} levels deep`)
      if (rel === '' && entry.type !== 'Directory') return refuse(p, 'not a file name')
      if (seen.has(rel)) return refuse(p, 'duplicate path')
      seen.add(rel)
      if ((entry.mode ?? 0) & 0o6000) return refuse(p, `setuid/setgid mode ${(entry.mode ?? 0).toString(8)}`)
      if (++entries > limits.maxEntries) return refuse(p, `more than ${limits.maxEntries} entries`)
      total += entry.size
      if (total > limits.maxBytes) return refuse(p, `unpacks to more than ${limits.maxBytes} bytes`)
      if (entry.type === 'SymbolicLink') {
        const target = entry.linkpath ?? ''
        if (isAbsolute(target)) return refuse(p, `symlink to absolute path ${JSON.stringify(target)}`)
        links.set(rel, target)
        if (!linkStaysInside(rel, links)) return refuse(p, `symlink to ${JSON.stringify(target)} ${ESCAPES}`)
        // Created by createLinks once tar is done: tar refuses a symlink whose target runs through a symlink
        // it already extracted (`current -> v2` then `latest -> current`), which legitimate releases contain.
        deferred.add(entry)
        return false
      } else if (entry.type !== 'Directory') {
        files++
        bytes += entry.size
      }
      return true
    }

    // A write's error (ENOSPC, EIO...) or a path the archive has both as a file and as a directory.
    const writer = new EntryWriter(staging, (err, entryPath) => fail(writeError(tarball, entryPath, err)))
    const unpack = new Parser({
      strict: true, // every tar warning is emitted as an 'error' instead
      // tar 7.5 aborts when (bytes out / bytes in) of its own decompressor exceeds maxDecompressionRatio
      // (default 1000), which a legitimately sparse release (zero-filled images) can pass. We decompress
      // ourselves so tar never applies it; Infinity states the intent: maxBytes is the only size limit.
      maxDecompressionRatio: Infinity,
      gzip: false,
      brotli: false,
      zstd: false,
      filter: (_path, entry) => check(entry as ReadEntry),
    })
    unpack.on('entry', (entry: ReadEntry) => writer.write(entry, normalize(entry.path)))
    // tar skips entries of unknown types (and oversized pax headers) without calling the filter
    unpack.on('ignoredEntry', (entry: ReadEntry) => {
      if (!failure && !deferred.has(entry)) refuse(entry.path, `unsupported ${entry.type} entry`)
    })
    unpack.on('error', (err: Error) => fail(classify(tarball, err)))
    gunzip.on('error', (err: Error) => fail(badArchive(tarball, err)))
    unpack.on('close', () => {
      // A link checked early may resolve differently once later links exist: check all of them again.
      for (const [rel, target] of failure ? [] : links) {
        if (!linkStaysInside(rel, links)) {
          failure = refusal(tarball, rel, `symlink to ${JSON.stringify(target)} ${ESCAPES}`)
          break
        }
      }
      if (failure) reject(failure)
      else createLinks(tarball, staging, links).then(() => resolve({ files, bytes, entries }), reject)
    })
    feedUnpack(gunzip, unpack, () => failure !== undefined)
    collectYoungGarbage(gunzip)
    feed(tarball, gunzip, () => failure !== undefined, digest, growing).catch((err: unknown) => fail(ioError(tarball, err)))
  })
}

/**
 * Writes the tarball into `gunzip` in IO_CHUNK reads (and into the running digest, from the same reads),
 * through two buffers that are read into again once gunzip has consumed them: a read stream allocates a
 * new 1 MiB buffer per read, 2 GiB of garbage for a 2 GiB release, as much as gunzip's output (see
 * collectYoungGarbage). Ends gunzip at the end of the file; stops without ending it once `stopped()` (the
 * extraction failed and tears gunzip down) or when gunzip no longer accepts input. A `growing` tarball is
 * opened once its first bytes are written and read as far as they are.
 */
async function feed(tarball: string, gunzip: Writable, stopped: () => boolean, digest?: RunningDigest, growing?: GrowingFile): Promise<void> {
  const upTo = (position: number) => Math.min(growing?.size ?? Infinity, position + IO_CHUNK)
  if (growing) await growing.onDisk(upTo(0))
  const file = await open(tarball, 'r')
  let position = 0
  try {
    const free = [Buffer.allocUnsafeSlow(IO_CHUNK), Buffer.allocUnsafeSlow(IO_CHUNK)]
    let wake: (() => void) | undefined
    let refused = false
    // Destroyed by a failure: callbacks of writes zlib still works on may never come.
    gunzip.once('close', () => {
      refused = true
      wake?.()
    })
    for (;;) {
      while (free.length === 0 && !refused && !stopped()) await new Promise<void>((resolve) => (wake = resolve))
      if (refused || stopped()) return
      if (growing) {
        if (position >= growing.size) break
        await growing.onDisk(upTo(position))
        if (stopped()) return
      }
      const buf = free.pop()!
      const { bytesRead } = await file.read(buf, 0, upTo(position) - position, position)
      if (stopped()) return
      if (bytesRead === 0) break
      position += bytesRead
      const chunk = bytesRead === IO_CHUNK ? buf : buf.subarray(0, bytesRead)
      if (digest) {
        digest.hash.update(chunk)
        digest.bytes += bytesRead
      }
      // The callback runs once zlib is done with the chunk; after an error (gunzip destroyed, or ended by
      // the end of the gzip data) the buffer may still be in zlib's hands and is never reused.
      gunzip.write(chunk, (err) => {
        if (err) refused = true
        else free.push(buf)
        wake?.()
        wake = undefined
      })
    }
    gunzip.end()
  } finally {
    await file.close()
  }
}

/** The bytes of tar stream handed to the synchronous unpack (tar's parser, our writes) in one write: sized to take about SLICE_MS. */
const SLICE_BYTES = { min: 16 * 1024, max: 256 * 1024 }
const SLICE_MS = 1
/** How long the unpack may go on in one turn of the event loop, slice after slice, before it yields. */
const UNPACK_TURN_MS = 2

/**
 * Hands gunzip's output to the synchronous unpack in slices, for at most UNPACK_TURN_MS of each turn of
 * the event loop. Synchronous, an extraction of many small files runs without a thread-pool round trip
 * at each step of each file: 293 MB of node_modules (7,461 files) took 7.6-8.2 s with tar's asynchronous
 * unpack and 2.3-2.9 s with its synchronous one (tmpfs; GNU tar 1.6-1.7 s). In turns, a download sharing the process (the
 * extraction follows it) still gets the event loop every few milliseconds. Each slice is sized from how
 * fast the last one went: 16 KiB of small files, up to 256 KiB of a large file (each write is a call: with
 * 32 KiB slices a 2 GiB release took 6.0-6.3 CPU s to extract, against 3.5-4.6). Stops once `stopped()`.
 * Exported for its test.
 */
export function feedUnpack(gunzip: Readable, unpack: { write(chunk: Buffer): unknown; end(): unknown }, stopped: () => boolean): void {
  let slicing = false
  let ended = false
  let slice = SLICE_BYTES.min
  gunzip.on('data', (chunk: Buffer) => {
    gunzip.pause()
    slicing = true
    let at = 0
    const next = (): void => {
      const until = performance.now() + UNPACK_TURN_MS
      do {
        if (stopped()) return
        const started = performance.now()
        unpack.write(chunk.subarray(at, at + slice))
        const ms = performance.now() - started
        at += slice
        // At most twice the last size: one fast slice must not make the next (maybe of small files) long.
        slice = Math.min(SLICE_BYTES.max, 2 * slice, Math.max(SLICE_BYTES.min, Math.round((slice * SLICE_MS) / Math.max(ms, 0.01))))
        if (stopped()) return
      } while (at < chunk.length && performance.now() < until)
      if (at < chunk.length) return void setImmediate(next)
      slicing = false
      // A paused gunzip still says 'end' once its last chunk is out, maybe before that chunk's last slice.
      if (ended) unpack.end()
      else gunzip.resume()
    }
    next()
  })
  gunzip.on('end', () => {
    ended = true
    if (!slicing && !stopped()) unpack.end()
  })
}

/** Decompressed bytes between two young-generation collections (see collectYoungGarbage). */
const MINOR_GC_BYTES = 16 * 1024 * 1024

/**
 * Each 1 MiB chunk gunzip puts out is garbage once tar has written it, but V8 collects the young
 * generation when its JavaScript objects fill it, and an extraction makes few: the chunks piled up until
 * V8's external-memory trigger started a full GC (every 30 to 40 MB of them in a 2 GiB extraction), and
 * the allocator kept that much.
 * Where the runtime exposes gc (packaging/node-flags has --expose-gc), a young-generation collection
 * every MINOR_GC_BYTES (cheap: little survives) frees them sooner. 2 GiB deploy, extraction phase peak RSS
 * about 205 -> 166-178 MB.
 */
function collectYoungGarbage(gunzip: Readable): void {
  const gc = globalThis.gc
  if (!gc) return
  let sinceGc = 0
  gunzip.on('data', (chunk: Buffer) => {
    sinceGc += chunk.length
    if (sinceGc < MINOR_GC_BYTES) return
    sinceGc = 0
    gc({ type: 'minor' })
  })
}

/** The SHA-256 the tarball must have, that of its bytes read so far, and how many they were. */
interface RunningDigest {
  expected: string
  hash: Hash
  bytes: number
}

/**
 * Compares the digest of what the extraction read with the expected one. If the reads stopped short of
 * the end of the file (bytes after the gzip stream that nothing consumed), the file is hashed whole.
 */
async function checkDigest(tarball: string, digest: RunningDigest, growing?: GrowingFile): Promise<void> {
  if (growing) await growing.onDisk(growing.size)
  const { size } = await stat(tarball)
  const actual = digest.bytes === size ? digest.hash.digest('hex') : await sha256File(tarball)
  if (actual !== digest.expected) throw checksumMismatch(tarball, actual, digest.expected)
}

function checksumMismatch(tarball: string, actual: string, expected: string): VerifyError {
  return new VerifyError('ROOKERY_CHECKSUM_MISMATCH', `${path.basename(tarball)} has sha256 ${actual}, expected ${expected}`)
}

/**
 * Creates the archive's symlinks, all vetted by linkStaysInside, after tar has written everything else. Tar
 * made no symlink, so every directory on disk is real; a link inside another link's path, or at a path tar
 * already created (`link/file` made `link/` a directory), is refused rather than written through.
 */
async function createLinks(tarball: string, staging: string, links: Map<string, string>): Promise<void> {
  for (const [rel, target] of links) {
    const parts = rel.split('/')
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join('/'))) throw refusal(tarball, rel, 'inside a symlinked directory')
    }
    const abs = path.join(staging, rel)
    try {
      await mkdir(path.dirname(abs), { recursive: true })
      await symlink(target, abs)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === 'EEXIST') throw refusal(tarball, rel, 'symlink conflicts with another entry')
      if (code === 'ENOTDIR') throw refusal(tarball, rel, 'parent is not a directory')
      throw err
    }
  }
}

function isAbsolute(p: string): boolean {
  // win32 parsing also catches `C:` and `\\` roots, which tar would strip to make the path relative
  return path.posix.isAbsolute(p) || path.win32.parse(p).root !== ''
}

function normalize(p: string): string {
  return p.split('/').filter((part) => part !== '' && part !== '.').join('/')
}

/**
 * Whether the symlink at `rel` resolves inside the release root, following the archive's other symlinks
 * (`links`, path -> target) the way the kernel would, so that a chain of individually harmless links
 * (`d/up -> ..`, then `x -> d/up/..`) is caught.
 */
function linkStaysInside(rel: string, links: Map<string, string>): boolean {
  const pending = [...rel.split('/').slice(0, -1), ...(links.get(rel) ?? '').split('/')]
  const resolved: string[] = []
  let hops = 0
  for (let part = pending.shift(); part !== undefined; part = pending.shift()) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (resolved.pop() === undefined) return false
      continue
    }
    resolved.push(part)
    const target = links.get(resolved.join('/'))
    if (target === undefined) continue
    if (++hops > MAX_LINK_HOPS || isAbsolute(target)) return false
    resolved.pop()
    pending.unshift(...target.split('/'))
  }
  return true
}

function ioError(tarball: string, err: unknown): RookeryError {
  return new RookeryError('ROOKERY_EXTRACT_IO', `cannot extract ${tarball}: ${(err as Error).message}`, { cause: err })
}

function badArchive(tarball: string, err: unknown): VerifyError {
  return new VerifyError('ROOKERY_BAD_ARCHIVE', `corrupt archive ${tarball}: ${(err as Error).message}`, { cause: err })
}

/** A write's error: the disk's (ROOKERY_EXTRACT_IO), or the archive's when a file and a directory share a path. */
function writeError(tarball: string, entryPath: string, err: Error): Error {
  const code = (err as { code?: unknown }).code
  if (code === 'EEXIST' || code === 'ENOTDIR') return refusal(tarball, entryPath, 'a file where the archive also has a directory, or the reverse')
  return ioError(tarball, err)
}

function refusal(tarball: string, entryPath: string, reason: string): VerifyError {
  const message = `refused entry ${JSON.stringify(entryPath)} in ${tarball}: ${reason}`
  return new VerifyError('ROOKERY_UNSAFE_ARCHIVE', message)
}

type TarError = Error & { tarCode?: string; entry?: { path?: string } }

/**
 * Maps an error tar's parser emitted to ours. In strict mode each of its warnings is one, and all say the
 * archive is corrupt or truncated (TAR_BAD_ARCHIVE, TAR_ENTRY_INVALID, TAR_ABORT); it does no I/O.
 */
function classify(tarball: string, err: TarError): Error {
  if (err.tarCode === undefined) return ioError(tarball, err)
  const entryPath = err.entry?.path
  const where = entryPath === undefined ? '' : ` at entry ${JSON.stringify(entryPath)}`
  return new VerifyError('ROOKERY_BAD_ARCHIVE', `corrupt archive ${tarball}${where}: ${err.message}`, { cause: err })
}
