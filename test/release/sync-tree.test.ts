import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { packDirectory } from '../../src/release/pack.ts'

// Durability is checked on the system calls themselves: the extraction runs in a child process under
// strace (.ci/run installs it), which prints each fdatasync/fsync with the path of its descriptor and
// each rename. Every extracted file's data and every directory must be flushed before the staging
// directory is renamed into place, and the parent directory after that.

// Without strace (a fresh machine) the test says so and skips; .ci/run installs it.
const skip = spawnSync('strace', ['-V']).status === 0 ? false : 'strace is not installed (apt-get install strace)'

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-sync-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

test('an extracted release is flushed to disk (files, directories) before it is renamed into place', { timeout: 60_000, skip }, async () => {
  const source = join(tmp, 'src')
  await mkdir(join(source, 'bin'), { recursive: true })
  await mkdir(join(source, 'lib', 'deep'), { recursive: true })
  const files = ['bin/run', 'lib/a.js', 'lib/deep/b.js', 'README']
  for (const [i, f] of files.entries()) await writeFile(join(source, f), `file ${i}\n`.repeat(1000 * (i + 1)))
  const tarball = join(tmp, 'release.tar.gz')
  await packDirectory(source, tarball)
  const releases = join(tmp, 'releases')
  await mkdir(releases)
  const script = join(tmp, 'extract.ts')
  await writeFile(script, `import { extractRelease } from ${JSON.stringify(join(import.meta.dirname, '../../src/release/extract.ts'))}\nawait extractRelease(process.argv[2], process.argv[3])\n`)

  const trace = join(tmp, 'trace.txt')
  const run = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=fdatasync,fsync,rename,renameat,renameat2', '-o', trace, process.execPath, script, tarball, join(releases, 'v1')], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(run.status, 0, `strace or the extraction failed: ${run.error?.message ?? ''} ${run.stderr}`)
  const lines = (await readFile(trace, 'utf8')).split('\n')
  // A call on one thread may be printed as '<unfinished ...>' and its result later as '<... resumed>'.
  assert.ok(!lines.some((l) => /(fdatasync|fsync).* = -1/.test(l)), 'no flush failed')
  const synced = (line: string) => /\b(fdatasync|fsync)\(\d+<([^>]+)>/.exec(line)?.[2]
  const renameAt = lines.findIndex((l) => /rename\w*\(.*\.staging-v1-[0-9a-f]+.*releases\/v1"/.test(l) && / = 0$/.test(l))
  assert.ok(renameAt >= 0, 'the staging directory was renamed to releases/v1')
  const before = new Set(lines.slice(0, renameAt).map(synced).filter((p): p is string => p !== undefined))
  const staging = [...before].find((p) => /\.staging-v1-[0-9a-f]+$/.test(p))
  assert.ok(staging, `the staging directory itself was flushed before the rename; flushed: ${[...before].join(', ')}`)
  for (const f of [...files, 'bin', 'lib', 'lib/deep']) assert.ok(before.has(join(staging, f)), `${f} flushed before the rename`)
  const after = lines.slice(renameAt + 1).map(synced)
  assert.ok(after.includes(releases), 'releases/ flushed after the rename')
  assert.equal(await readFile(join(releases, 'v1', 'README'), 'utf8'), 'file 3\n'.repeat(4000))
})
