import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { packDirectory } from '../../src/release/pack.ts'
import { FLUSH_COST_PER_ENTRY } from '../../src/release/sync-tree.ts'

// Durability is checked on the system calls themselves: the extraction runs in a child process under
// strace (.ci/run installs it), which prints each syncfs/fdatasync/fsync with the path of its descriptor
// (following the `sync -f` child) and each rename. The extracted tree must be flushed before
// the staging directory is renamed into place, and the parent directory after that.

// Without strace (a fresh machine) the test says so and skips; .ci/run installs it.
const skip = spawnSync('strace', ['-V']).status === 0 ? false : 'strace is not installed (apt-get install strace)'

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-sync-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

interface Traced {
  /** Paths flushed (syncfs, fdatasync or fsync) before the rename into place, by call. */
  before: Array<{ call: string; path: string }>
  after: Array<{ call: string; path: string }>
  staging: string
  releases: string
}

/** Packs `files` (path -> content), extracts the tarball under strace with `env`; returns the flushes. */
async function traceExtraction(name: string, files: Record<string, string | Buffer>, env: NodeJS.ProcessEnv = process.env): Promise<Traced> {
  const dir = join(tmp, name)
  const source = join(dir, 'src')
  for (const [file, content] of Object.entries(files)) {
    await mkdir(join(source, file, '..'), { recursive: true })
    await writeFile(join(source, file), content)
  }
  const tarball = join(dir, 'release.tar.gz')
  await packDirectory(source, tarball)
  const releases = join(dir, 'releases')
  await mkdir(releases)
  const script = join(dir, 'extract.ts')
  await writeFile(script, `import { extractRelease } from ${JSON.stringify(join(import.meta.dirname, '../../src/release/extract.ts'))}\nawait extractRelease(process.argv[2], process.argv[3])\n`)

  const trace = join(dir, 'trace.txt')
  const run = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=syncfs,fdatasync,fsync,rename,renameat,renameat2', '-o', trace, process.execPath, script, tarball, join(releases, 'v1')], { encoding: 'utf8', timeout: 50_000, env })
  assert.equal(run.status, 0, `strace or the extraction failed: ${run.error?.message ?? ''} ${run.stderr}`)
  const lines = (await readFile(trace, 'utf8')).split('\n')
  // A call on one thread may be printed as '<unfinished ...>' and its result later as '<... resumed>'.
  assert.ok(!lines.some((l) => /(syncfs|fdatasync|fsync).* = -1/.test(l)), 'no flush failed')
  const flushed = (line: string) => {
    const m = /\b(syncfs|fdatasync|fsync)\(\d+<([^>]+)>/.exec(line)
    return m ? [{ call: m[1]!, path: m[2]! }] : []
  }
  const renameAt = lines.findIndex((l) => /rename\w*\(.*\.staging-v1-[0-9a-f]+.*releases\/v1"/.test(l) && / = 0$/.test(l))
  assert.ok(renameAt >= 0, 'the staging directory was renamed to releases/v1')
  const before = lines.slice(0, renameAt).flatMap(flushed)
  const staging = before.map((f) => f.path).find((p) => /\.staging-v1-[0-9a-f]+$/.test(p))
  assert.ok(staging, `the staging directory itself was flushed before the rename; flushed: ${before.map((f) => f.path).join(', ')}`)
  for (const [file, content] of Object.entries(files)) assert.deepEqual(await readFile(join(releases, 'v1', file)), Buffer.from(content))
  return { before, after: lines.slice(renameAt + 1).flatMap(flushed), staging, releases }
}

const SMALL_FILES = Object.fromEntries(['bin/run', 'lib/a.js', 'lib/deep/b.js', 'README'].map((f, i) => [f, `file ${i}\n`.repeat(1000 * (i + 1))]))

function assertEachEntryFlushed(traced: Traced, entries: string[]): void {
  const paths = new Set(traced.before.filter((f) => f.call !== 'syncfs').map((f) => f.path))
  for (const entry of entries) assert.ok(paths.has(join(traced.staging, entry)), `${entry} flushed on its own before the rename`)
  assert.ok(!traced.before.some((f) => f.call === 'syncfs'), 'no syncfs')
}

test('a release of many small files is flushed with one syncfs of its filesystem before it is renamed into place', { timeout: 60_000, skip }, async () => {
  const traced = await traceExtraction('small', SMALL_FILES)
  assert.deepEqual(traced.before.filter((f) => f.call === 'syncfs').map((f) => f.path), [traced.staging])
  assert.ok(!traced.before.some((f) => f.call === 'fdatasync'), 'no file flushed on its own')
  assert.ok(traced.after.some((f) => f.path === traced.releases), 'releases/ flushed after the rename')
})

test('where `sync -f` fails (old coreutils), every file and directory is flushed on its own', { timeout: 60_000, skip }, async () => {
  // A `sync` that answers as coreutils 8.22 (RHEL 7, Amazon Linux 2) does to -f.
  const bin = join(tmp, 'old-coreutils')
  await mkdir(bin)
  await writeFile(join(bin, 'sync'), "#!/bin/sh\necho \"sync: invalid option -- 'f'\" >&2\nexit 1\n")
  await chmod(join(bin, 'sync'), 0o755)
  const traced = await traceExtraction('old-sync', SMALL_FILES, { ...process.env, PATH: `${bin}:${process.env.PATH}` })
  assertEachEntryFlushed(traced, [...Object.keys(SMALL_FILES), 'bin', 'lib', 'lib/deep'])
  assert.ok(traced.after.some((f) => f.path === traced.releases), 'releases/ flushed after the rename')
})

test('a tarball larger than its few entries are worth flushing on its own is not flushed along (no syncfs)', { timeout: 60_000, skip }, async () => {
  // Two entries (the file and its directory) and an incompressible tarball far over 2 x FLUSH_COST_PER_ENTRY.
  const big = { 'data/blob.bin': randomBytes(16 * FLUSH_COST_PER_ENTRY) }
  const traced = await traceExtraction('big', big)
  assertEachEntryFlushed(traced, ['data/blob.bin', 'data'])
})
