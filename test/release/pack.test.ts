import assert from 'node:assert/strict'
import { chmod, link, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { create, extract, list } from 'tar'
import { RookeryError, UsageError } from '../../src/errors.ts'
import { sha256File } from '../../src/release/hash.ts'
import { PACK_MTIME, packDirectory } from '../../src/release/pack.ts'

let tmp = ''
before(async () => {
  process.umask(0o022)
  tmp = await mkdtemp(join(tmpdir(), 'rookery-pack-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

const LONG = `${'long-directory-name-'.repeat(4)}/${'long-file-name-'.repeat(5)}.txt` // needs a pax header

type Node = { file: string; mode?: number } | { dir: true } | { link: string }

const TREE: Record<string, Node> = {
  'README.md': { file: 'hello\n' },
  'bin/run': { file: '#!/bin/sh\necho run\n', mode: 0o755 },
  'lib/a.js': { file: 'export const a = 1\n' },
  'lib/a-b.js': { file: 'b' },
  'lib/empty.txt': { file: '' },
  'lib/current': { link: 'a.js' },
  // sort between "lib/" and its content when the order is byte-wise on stored paths, not depth-first
  'lib-x': { file: 'x' },
  'lib.txt': { file: 't' },
  'empty-dir': { dir: true },
  'späce and ünicode.txt': { file: 'u' },
  [LONG]: { file: 'long' },
}

/** Writes TREE under `root`, in the given key order, with the given mtime on every file. */
async function buildTree(root: string, keys: string[], mtime: Date): Promise<void> {
  for (const rel of keys) {
    const node = TREE[rel] as Node
    const abs = join(root, rel)
    await mkdir(dirname(abs), { recursive: true })
    if ('dir' in node) await mkdir(abs, { recursive: true })
    else if ('link' in node) await symlink(node.link, abs)
    else {
      await writeFile(abs, node.file)
      await chmod(abs, node.mode ?? 0o644)
      await utimes(abs, mtime, mtime)
    }
  }
}

async function newDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmp, prefix))
}

interface Listed {
  path: string
  type: string
  mode: number | undefined
  uid: number | undefined
  gid: number | undefined
  uname: string | undefined
  gname: string | undefined
  mtime: Date | undefined
  linkpath: string | undefined
}

async function listTarball(file: string): Promise<Listed[]> {
  const out: Listed[] = []
  await list({
    file,
    onReadEntry: (e) => {
      const { path, type, mode, uid, gid, uname, gname, mtime, linkpath } = e
      out.push({ path, type, mode, uid, gid, uname, gname, mtime, linkpath })
    },
  })
  return out
}

describe('packDirectory', () => {
  test('is deterministic: same content gives the same bytes, whatever the mtimes or creation order', async () => {
    const work = await newDir('det-')
    const keys = Object.keys(TREE)
    await buildTree(join(work, 'one'), keys, new Date('2024-05-01T10:00:00Z'))
    await buildTree(join(work, 'two'), [...keys].reverse(), new Date('2011-11-11T11:11:11Z'))

    await packDirectory(join(work, 'one'), join(work, 'one-a.tar.gz'))
    await packDirectory(join(work, 'one'), join(work, 'one-b.tar.gz'))
    await packDirectory(join(work, 'two'), join(work, 'two.tar.gz'))
    const hash = await sha256File(join(work, 'one-a.tar.gz'))
    assert.match(hash, /^[0-9a-f]{64}$/)
    assert.equal(await sha256File(join(work, 'one-b.tar.gz')), hash)
    assert.equal(await sha256File(join(work, 'two.tar.gz')), hash)

    // and the hash does see content: one changed byte changes it
    await writeFile(join(work, 'two', 'lib', 'a-b.js'), 'c')
    await packDirectory(join(work, 'two'), join(work, 'changed.tar.gz'))
    assert.notEqual(await sha256File(join(work, 'changed.tar.gz')), hash)
  })

  test('writes sorted entries with owner 0, no names, fixed mtimes, kept modes and symlinks', async () => {
    const work = await newDir('entries-')
    await buildTree(join(work, 'src'), Object.keys(TREE), new Date())
    const result = await packDirectory(join(work, 'src'), join(work, 'out.tar.gz'))
    const entries = await listTarball(join(work, 'out.tar.gz'))

    const paths = entries.map((e) => e.path)
    const sorted = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert.deepEqual(paths, sorted)
    assert.deepEqual(paths.slice(0, 2), ['README.md', 'bin/'])
    assert.ok(paths.includes(LONG) && paths.includes('empty-dir/') && paths.includes('späce and ünicode.txt'))
    // byte-wise: '-' is 0x2d, '.' 0x2e, '/' 0x2f
    const at = (p: string): number => paths.indexOf(p)
    assert.ok(at('lib-x') < at('lib.txt') && at('lib.txt') < at('lib/') && at('lib/') < at('lib/a-b.js'))
    assert.ok(at('lib/a-b.js') < at('lib/a.js'))
    for (const e of entries) {
      // portable leaves the uid/gid fields empty, which every reader takes as 0
      assert.equal(e.uid ?? 0, 0, e.path)
      assert.equal(e.gid ?? 0, 0, e.path)
      assert.ok(!e.uname && !e.gname, e.path)
      if (e.type === 'File') assert.equal(e.mtime?.getTime(), PACK_MTIME.getTime(), e.path)
    }
    const byPath = new Map(entries.map((e) => [e.path, e]))
    assert.equal(byPath.get('bin/run')?.mode, 0o755)
    assert.equal(byPath.get('README.md')?.mode, 0o644)
    assert.equal(byPath.get('lib/current')?.type, 'SymbolicLink')
    assert.equal(byPath.get('lib/current')?.linkpath, 'a.js')
    const files = Object.values(TREE).filter((n): n is { file: string } => 'file' in n)
    const bytes = files.reduce((sum, n) => sum + Buffer.byteLength(n.file), 0)
    assert.deepEqual(result, { files: files.length, bytes })
  })

  test('skips .git at the top and at any depth, as a directory or a file', async () => {
    const work = await newDir('git-')
    const src = join(work, 'src')
    await mkdir(join(src, '.git', 'objects'), { recursive: true })
    await writeFile(join(src, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    await mkdir(join(src, 'vendor', 'lib', '.git'), { recursive: true })
    await writeFile(join(src, 'vendor', 'lib', '.git', 'config'), '')
    await writeFile(join(src, 'vendor', '.git'), 'gitdir: ../.git/modules/vendor\n')
    await writeFile(join(src, 'vendor', 'lib', 'keep.txt'), 'keep')
    await writeFile(join(src, '.gitignore'), 'kept: only .git itself is skipped\n')
    await packDirectory(src, join(work, 'out.tar.gz'))
    const paths = (await listTarball(join(work, 'out.tar.gz'))).map((e) => e.path)
    assert.deepEqual(paths, ['.gitignore', 'vendor/', 'vendor/lib/', 'vendor/lib/keep.txt'])
  })

  test('stores top-level names starting with "@" as themselves, not as archives to merge in', async () => {
    // tar's create() reads an argument "@x" as the tar archive "x" and adds its entries instead: a release
    // whose root holds node_modules-style "@scope" directories failed to pack (EISDIR), and one holding
    // "@notes" beside an archive "notes" was packed with the archive's entries in its place.
    const work = await newDir('at-')
    const src = join(work, 'src')
    await mkdir(join(src, '@scope', 'pkg'), { recursive: true })
    await writeFile(join(src, '@scope', 'pkg', 'index.js'), 'module.exports = 1\n')
    await mkdir(join(work, 'other'))
    await writeFile(join(work, 'other', 'smuggled.txt'), 'not part of the release')
    await create({ file: join(src, 'notes'), cwd: join(work, 'other') }, ['smuggled.txt'])
    await writeFile(join(src, '@notes'), 'plain notes\n')

    const result = await packDirectory(src, join(work, 'out.tar.gz'))
    const entries = await listTarball(join(work, 'out.tar.gz'))
    assert.deepEqual(entries.map((e) => [e.path, e.type]), [
      ['@notes', 'File'],
      ['@scope/', 'Directory'],
      ['@scope/pkg/', 'Directory'],
      ['@scope/pkg/index.js', 'File'],
      ['notes', 'File'],
    ])
    const out = join(work, 'out')
    await mkdir(out)
    await extract({ file: join(work, 'out.tar.gz'), cwd: out })
    assert.equal(await readFile(join(out, '@notes'), 'utf8'), 'plain notes\n')
    assert.equal(result.files, 3)
  })

  test('stores hardlinked files as plain files (extraction refuses hardlinks)', async () => {
    const work = await newDir('hardlink-')
    const src = join(work, 'src')
    await mkdir(src)
    await writeFile(join(src, 'a'), 'same inode')
    await link(join(src, 'a'), join(src, 'b'))
    const result = await packDirectory(src, join(work, 'out.tar.gz'))
    const entries = await listTarball(join(work, 'out.tar.gz'))
    assert.deepEqual(entries.map((e) => [e.path, e.type]), [['a', 'File'], ['b', 'File']])
    assert.deepEqual(result, { files: 2, bytes: 20 })
  })

  test('drops setgid from directories but refuses a setuid file', async () => {
    const work = await newDir('suid-')
    const src = join(work, 'src')
    await mkdir(join(src, 'shared'), { recursive: true })
    await chmod(join(src, 'shared'), 0o2755)
    await packDirectory(src, join(work, 'ok.tar.gz'))
    const [shared] = await listTarball(join(work, 'ok.tar.gz'))
    assert.equal(shared?.mode, 0o755)

    await writeFile(join(src, 'shared', 'su'), 'x')
    await chmod(join(src, 'shared', 'su'), 0o4755)
    await assert.rejects(packDirectory(src, join(work, 'bad.tar.gz')), (err: unknown) => {
      assert.ok(err instanceof UsageError)
      assert.match(err.message, /shared\/su.*setuid/)
      return true
    })
  })

  test('reports progress at most once per file plus once at the end', async () => {
    const work = await newDir('progress-')
    await buildTree(join(work, 'src'), Object.keys(TREE), new Date())
    const calls: Array<[number, number]> = []
    const result = await packDirectory(join(work, 'src'), join(work, 'out.tar.gz'), {
      onProgress: (done, total) => calls.push([done, total]),
    })
    assert.ok(calls.length >= 2 && calls.length <= result.files + 1, `${calls.length} calls`)
    assert.deepEqual(calls.at(-1), [result.bytes, result.bytes])
    for (let i = 1; i < calls.length; i++) assert.ok((calls[i]?.[0] ?? 0) >= (calls[i - 1]?.[0] ?? 0))
    assert.ok(calls.every(([, total]) => total === result.bytes))
  })

  test('refuses a socket, naming it, and leaves no output or temp file', async () => {
    const work = await newDir('special-')
    const src = join(work, 'src')
    const out = join(work, 'out')
    await mkdir(join(src, 'run'), { recursive: true })
    await mkdir(out)
    await writeFile(join(src, 'a.txt'), 'a')
    const socketPath = join(src, 'run', 'app.sock')
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    try {
      await assert.rejects(packDirectory(src, join(out, 'r.tar.gz')), (err: unknown) => {
        assert.ok(err instanceof UsageError)
        assert.ok(err.message.includes(socketPath), err.message)
        assert.match(err.message, /socket/)
        return true
      })
      assert.deepEqual(await readdir(out), [])
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  test('refuses a missing directory or a file with a UsageError', async () => {
    const work = await newDir('missing-')
    await writeFile(join(work, 'file'), 'x')
    await assert.rejects(packDirectory(join(work, 'nope'), join(work, 'a.tar.gz')), (err: unknown) => {
      assert.ok(err instanceof UsageError)
      assert.match(err.message, /nope: no such directory/)
      return true
    })
    await assert.rejects(packDirectory(join(work, 'file'), join(work, 'b.tar.gz')), (err: unknown) => {
      assert.ok(err instanceof UsageError)
      assert.match(err.message, /file: not a directory/)
      return true
    })
    assert.deepEqual(await readdir(work), ['file'])
  })

  test('refuses a name that is not valid UTF-8, naming its bytes, and leaves no output', async () => {
    const work = await newDir('utf8-')
    const src = join(work, 'src')
    await mkdir(join(src, 'lib'), { recursive: true })
    await writeFile(join(src, 'ok.txt'), 'fine')
    // "caf\xe9.txt": a Latin-1 name, as an old tarball or a Windows share may leave behind
    await writeFile(Buffer.concat([Buffer.from(join(src, 'lib', 'caf')), Buffer.from([0xe9]), Buffer.from('.txt')]), 'x')
    await assert.rejects(packDirectory(src, join(work, 'out.tar.gz')), (err: unknown) => {
      assert.ok(err instanceof UsageError)
      assert.ok(err.message.includes(`${join(src, 'lib')}/caf\\xe9.txt: its name is not valid UTF-8`), err.message)
      return true
    })
    assert.deepEqual(await readdir(work), ['src'])
  })

  test('a failed write leaves no temp file behind', async () => {
    const work = await newDir('fail-')
    const src = join(work, 'src')
    await mkdir(src)
    await writeFile(join(src, 'a'), 'a')
    // outFile is a non-empty directory: the temp tarball is written, then the rename fails
    await mkdir(join(work, 'out.tar.gz', 'occupied'), { recursive: true })
    await assert.rejects(packDirectory(src, join(work, 'out.tar.gz')), (err: unknown) => {
      assert.ok(err instanceof RookeryError)
      assert.equal(err.code, 'ROOKERY_PACK_IO')
      return true
    })
    assert.deepEqual((await readdir(work)).sort(), ['out.tar.gz', 'src'])
  })
})
