import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import {
  appendFile, chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile,
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { RookeryError, VerifyError } from '../../src/errors.ts'
import { extractRelease, feedUnpack, type GrowingFile } from '../../src/release/extract.ts'
import type { ExtractLimits, ExtractResult } from '../../src/release/extract.ts'
import { packDirectory } from '../../src/release/pack.ts'
import { tarBuffer, writeTgz } from './evil-tar.ts'
import type { RawEntry } from './evil-tar.ts'

let tmp = ''
before(async () => {
  process.umask(0o022)
  tmp = await mkdtemp(join(tmpdir(), 'rookery-extract-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

interface Case {
  dir: string
  tarball: string
  parent: string
  target: string
}

/** A fresh case: the tarball sits outside `parent`, so `parent` must be empty after a failed extraction. */
async function newCase(): Promise<Case> {
  const dir = await mkdtemp(join(tmp, 'case-'))
  const parent = join(dir, 'releases')
  await mkdir(parent)
  return { dir, tarball: join(dir, 'release.tar.gz'), parent, target: join(parent, 'v1') }
}

/** The files and bytes an extraction reports, without how it flushed them. */
const counts = ({ files, bytes }: ExtractResult) => ({ files, bytes })

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false)

async function assertFails(
  c: Case,
  code: string,
  message: RegExp,
  limits?: Partial<ExtractLimits>,
): Promise<void> {
  await assert.rejects(extractRelease(c.tarball, c.target, limits), (err: unknown) => {
    assert.ok(err instanceof RookeryError, `not a RookeryError: ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    assert.ok(!err.message.includes('\n'), 'message is one line')
    return true
  })
  // neither targetDir nor a .staging-* directory is left behind
  assert.deepEqual(await readdir(c.parent), [])
}

async function assertRefused(entries: RawEntry[], message: RegExp, limits?: Partial<ExtractLimits>): Promise<Case> {
  const c = await newCase()
  // a harmless entry first, so the staging directory has content to clean up when the refusal comes
  await writeTgz(c.tarball, [{ path: 'aaa-ok.txt', body: 'fine' }, ...entries])
  await assertFails(c, 'ROOKERY_UNSAFE_ARCHIVE', message, limits)
  return c
}

describe('extractRelease accepts', () => {
  test('a packed directory: content, modes, symlinks, nested dirs', async () => {
    const c = await newCase()
    const src = join(c.dir, 'src')
    await mkdir(join(src, 'bin'), { recursive: true })
    await mkdir(join(src, 'lib', 'deep'), { recursive: true })
    await writeFile(join(src, 'bin', 'run'), '#!/bin/sh\necho hi\n')
    await chmod(join(src, 'bin', 'run'), 0o755)
    await writeFile(join(src, 'lib', 'deep', 'data.txt'), 'data')
    await chmod(join(src, 'lib', 'deep', 'data.txt'), 0o640)
    await symlink('../bin/run', join(src, 'lib', 'run-link'))
    await symlink('lib/deep', join(src, 'current'))
    await packDirectory(src, c.tarball)

    const result = await extractRelease(c.tarball, c.target)
    assert.deepEqual(counts(result), { files: 2, bytes: 'data'.length + '#!/bin/sh\necho hi\n'.length })
    // a few small files, a tarball smaller than they are worth flushing on their own: one syncfs
    assert.equal(result.flushed, 'filesystem')
    assert.deepEqual((await readdir(c.parent)).sort(), ['v1'])
    assert.equal((await stat(join(c.target, 'bin', 'run'))).mode & 0o7777, 0o755)
    assert.equal((await stat(join(c.target, 'lib', 'deep', 'data.txt'))).mode & 0o7777, 0o640)
    assert.equal(await readFile(join(c.target, 'lib', 'deep', 'data.txt'), 'utf8'), 'data')
    assert.equal(await readlink(join(c.target, 'lib', 'run-link')), '../bin/run')
    assert.equal(await readlink(join(c.target, 'current')), 'lib/deep')
    assert.equal(await readFile(join(c.target, 'lib', 'run-link'), 'utf8'), '#!/bin/sh\necho hi\n')
  })

  test("files keep the archive's mtime; a directory gets its archive mode with owner rwx, as tar does", async () => {
    const c = await newCase()
    await writeTgz(c.tarball, [{ path: 'ro/', type: '5', mode: 0o555 }, { path: 'ro/empty', body: '' }, { path: 'ro/sub/f', body: 'x', mode: 0o600 }])
    await extractRelease(c.tarball, c.target)
    assert.equal((await stat(join(c.target, 'ro'))).mode & 0o7777, 0o755)
    assert.equal((await stat(join(c.target, 'ro', 'sub'))).mode & 0o7777, 0o755, 'a parent the archive does not list: 0777 less the umask')
    const file = await stat(join(c.target, 'ro', 'sub', 'f'))
    assert.equal(file.mode & 0o7777, 0o600)
    // the hand-built archives' headers say 2000-01-01 (946684800)
    assert.equal(file.mtime.getTime(), 946684800_000)
    assert.equal(await readFile(join(c.target, 'ro', 'sub', 'f'), 'utf8'), 'x')
    const empty = await stat(join(c.target, 'ro', 'empty'))
    assert.equal(empty.size, 0)
    assert.equal(empty.mtime.getTime(), 946684800_000, 'an empty file (no data, only its end) gets its mtime too')
  })

  test('long and non-ASCII names (pax headers) and empty directories', async () => {
    const c = await newCase()
    const src = join(c.dir, 'src')
    const long = join('a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60), `${'d'.repeat(120)}.txt`)
    const names = [long, join('café', 'ñandú ☃.txt')]
    for (const [i, name] of names.entries()) {
      await mkdir(join(src, name, '..'), { recursive: true })
      await writeFile(join(src, name), `content ${i}`)
    }
    await mkdir(join(src, 'empty', 'nested'), { recursive: true })
    await packDirectory(src, c.tarball)
    assert.deepEqual(counts(await extractRelease(c.tarball, c.target)), { files: 2, bytes: 'content 0'.length * 2 })
    for (const [i, name] of names.entries()) assert.equal(await readFile(join(c.target, name), 'utf8'), `content ${i}`)
    assert.deepEqual(await readdir(join(c.target, 'empty')), ['nested'])
  })

  test('files owned by the extracting user, whatever owner the archive records', async () => {
    // meaningful as root too, where tar would otherwise chown to the archive's uid/gid
    const c = await newCase()
    await writeTgz(c.tarball, [{ path: 'f', body: 'x', uid: 4321 }])
    await extractRelease(c.tarball, c.target)
    const st = await stat(join(c.target, 'f'))
    assert.equal(st.uid, process.getuid?.())
    assert.equal(st.gid, process.getgid?.())
  })

  test('a hand-built archive with in-release symlinks, including ones using ..', async () => {
    const c = await newCase()
    await writeTgz(c.tarball, [
      { path: 'bin/', type: '5', mode: 0o755 },
      { path: 'bin/tool', body: 'x', mode: 0o755 },
      { path: 'lib/', type: '5', mode: 0o755 },
      { path: 'lib/tool', type: '2', linkpath: '../bin/tool' },
      { path: 'lib/self', type: '2', linkpath: '.' },
    ])
    assert.deepEqual(counts(await extractRelease(c.tarball, c.target)), { files: 1, bytes: 1 })
    assert.equal(await readFile(join(c.target, 'lib', 'tool'), 'utf8'), 'x')
  })

  test('symlinks to symlinks, in either order (tar alone refuses the second)', async () => {
    for (const order of [0, 1]) {
      const c = await newCase()
      const links: RawEntry[] = [
        { path: 'current', type: '2', linkpath: 'v2' },
        { path: 'latest', type: '2', linkpath: 'current' },
      ]
      if (order) links.reverse()
      await writeTgz(c.tarball, [{ path: 'v2/', type: '5' }, { path: 'v2/app', body: 'v2' }, ...links])
      await extractRelease(c.tarball, c.target)
      assert.equal(await readFile(join(c.target, 'latest', 'app'), 'utf8'), 'v2')
      assert.equal(await readlink(join(c.target, 'latest')), 'current')
    }
  })

  test('many small files and large ones, each whole (the unpack gets them in slices of varying size)', async () => {
    const c = await newCase()
    const src = join(c.dir, 'src')
    const files = new Map<string, Buffer>()
    files.set('big/one.bin', randomBytes(3 * 1024 * 1024 + 12345))
    files.set('big/two.bin', randomBytes(1536 * 1024))
    for (let i = 0; i < 2000; i++) files.set(`pkg-${i % 20}/lib/file-${i}.js`, randomBytes(i % 700))
    for (const [rel, body] of files) {
      await mkdir(join(src, rel, '..'), { recursive: true })
      await writeFile(join(src, rel), body)
    }
    await packDirectory(src, c.tarball)
    const result = await extractRelease(c.tarball, c.target)
    assert.deepEqual(counts(result), { files: files.size, bytes: [...files.values()].reduce((sum, b) => sum + b.length, 0) })
    for (const [rel, body] of files) assert.ok(body.equals(await readFile(join(c.target, rel))), rel)
  })

  test('a highly compressible archive (ratio far above tar’s default 1000 limit)', async () => {
    const c = await newCase()
    const zeros = Buffer.alloc(64 * 1024 * 1024)
    const gz = gzipSync(tarBuffer([{ path: 'zeros.img', body: zeros }]), { level: 9 })
    assert.ok(zeros.length / gz.length > 1000, `ratio ${zeros.length / gz.length}`)
    await writeFile(c.tarball, gz)
    assert.deepEqual(counts(await extractRelease(c.tarball, c.target)), { files: 1, bytes: zeros.length })
    assert.equal((await stat(join(c.target, 'zeros.img'))).size, zeros.length)
  })
})

describe('feedUnpack', () => {
  test('hands a chunk over in slices, other work running between, and ends the unpack only after the last slice', async () => {
    // gunzip says 'end' on the tick after its last chunk when that chunk and the end of input come
    // together, paused or not; an unpack slow enough takes that chunk's slices over several turns.
    const data = randomBytes(1024 * 1024 + 5000)
    const source = new Readable({
      read() {
        this.push(data)
        this.push(null)
      },
    })
    const written: Buffer[] = []
    let endedAfter = -1
    // Other work of the process (a download's events) gets turns between slices: count the writes done
    // each time a callback queued behind them runs.
    const seenBetween: number[] = []
    const other = () => {
      seenBetween.push(written.length)
      if (endedAfter < 0) setImmediate(other)
    }
    setImmediate(other)
    await new Promise<void>((resolve) => {
      feedUnpack(source, {
        write: (slice: Buffer) => {
          written.push(Buffer.from(slice))
          const until = performance.now() + 1
          while (performance.now() < until); // a slow disk: 1 ms per write
        },
        end: () => {
          endedAfter = written.length
          resolve()
        },
      }, () => false)
    })
    assert.equal(endedAfter, written.length)
    assert.ok(written.length > 1, 'the chunk was handed over in slices')
    assert.ok(Buffer.concat(written).equals(data))
    assert.ok(seenBetween.some((n) => n > 0 && n < written.length), `no turn between slices (writes seen: ${seenBetween.join(',')})`)
  })
})

describe('extractRelease refuses', () => {
  test('a ../ path', async () => {
    const c = await assertRefused([{ path: '../evil', body: 'pwned' }], /"\.\.\/evil".*'\.\.'/)
    assert.equal(await exists(join(c.parent, '..', 'evil')), false)
  })

  test('a .. segment in the middle of a path', async () => {
    await assertRefused([{ path: 'a/../../evil', body: 'pwned' }], /"a\/\.\.\/\.\.\/evil"/)
  })

  test('an absolute path', async () => {
    const c0 = await newCase()
    const victim = join(c0.dir, 'absolute-victim')
    await assertRefused([{ path: victim, body: 'pwned' }], /absolute path/)
    assert.equal(await exists(victim), false)
  })

  test('a symlink pointing outside the release', async () => {
    await assertRefused([{ path: 'etc', type: '2', linkpath: '../../etc' }], /"etc".*symlink to "\.\.\/\.\.\/etc"/)
  })

  test('a symlink to an absolute path', async () => {
    await assertRefused([{ path: 'passwd', type: '2', linkpath: '/etc/passwd' }], /absolute/)
  })

  test('a chain of symlinks that escapes, whichever comes first', async () => {
    const up: RawEntry = { path: 'd/up', type: '2', linkpath: '..' }
    const out: RawEntry = { path: 'x', type: '2', linkpath: 'd/up/..' }
    const dir: RawEntry = { path: 'd/', type: '5' }
    await assertRefused([dir, up, out], /"x"/)
    // x is checked before d/up exists: only the final re-check can catch it
    await assertRefused([out, dir, up], /"x"/)
  })

  test('a symlink loop', async () => {
    await assertRefused(
      [
        { path: 'a', type: '2', linkpath: 'b' },
        { path: 'b', type: '2', linkpath: 'a' },
      ],
      /loops/,
    )
  })

  test('a file under a symlink, even one pointing inside', async () => {
    await assertRefused(
      [
        { path: 'sub/', type: '5' },
        { path: 'link', type: '2', linkpath: 'sub' },
        { path: 'link/file', body: 'x' },
      ],
      /"link".*conflicts/,
    )
  })

  test('a symlink under a symlink, even one pointing inside', async () => {
    await assertRefused(
      [
        { path: 'sub/', type: '5' },
        { path: 'link', type: '2', linkpath: 'sub' },
        { path: 'link/inner', type: '2', linkpath: '.' },
      ],
      /"link\/inner".*inside a symlinked directory/,
    )
  })

  test('a hardlink', async () => {
    await assertRefused([{ path: 'hard', type: '1', linkpath: 'aaa-ok.txt' }], /"hard".*Link entries are not allowed/)
  })

  test('a fifo', async () => {
    await assertRefused([{ path: 'pipe', type: '6' }], /"pipe".*FIFO/)
  })

  test('a character device', async () => {
    await assertRefused([{ path: 'null', type: '3' }], /"null".*CharacterDevice/)
  })

  test('an entry type tar skips by itself', async () => {
    await assertRefused([{ path: 'sparse', type: 'S', body: 'x' }], /"sparse".*SparseFile/)
  })

  test('a setuid file', async () => {
    await assertRefused([{ path: 'su', mode: 0o4755, body: 'x' }], /"su".*setuid\/setgid mode 4755/)
  })

  test('a setgid directory', async () => {
    await assertRefused([{ path: 'shared/', type: '5', mode: 0o2775 }], /"shared\/".*setuid\/setgid/)
  })

  test('a duplicate path', async () => {
    await assertRefused([{ path: './aaa-ok.txt', body: 'again' }], /duplicate/)
  })

  test('a file where the archive also has a directory, in either order', async () => {
    await assertRefused([{ path: 'x', body: 'a file' }, { path: 'x/y', body: 'under it' }], /"x\/y".*a file where the archive also has a directory/)
    await assertRefused([{ path: 'd/y', body: 'makes d a directory' }, { path: 'd', body: 'a file' }], /"d".*a file where the archive also has a directory/)
  })

  test('a file named "."', async () => {
    await assertRefused([{ path: '.', body: 'x' }], /"\.".*not a file name/)
  })

  test('a path more than 1024 levels deep (as tar refuses)', async () => {
    const c = await newCase()
    const src = join(c.dir, 'src')
    const deep = join(src, ...Array.from({ length: 1025 }, () => 'a'))
    await mkdir(deep, { recursive: true })
    await writeFile(join(deep, 'f'), 'deep')
    await packDirectory(src, c.tarball)
    await assertFails(c, 'ROOKERY_UNSAFE_ARCHIVE', /more than 1024 levels deep/)
  })

  test('more bytes than maxBytes', async () => {
    const body = 'x'.repeat(600)
    await assertRefused(
      [
        { path: 'one', body },
        { path: 'two', body },
      ],
      /"two".*more than 1000 bytes/,
      { maxBytes: 1000 },
    )
  })

  test('a declared size over the default limit, before reading any of it', async () => {
    // 21 GiB declared, no body: refused at the header rather than reported as a truncated archive
    await assertRefused([{ path: 'bomb', size: 21 * 1024 ** 3 }], /"bomb".*more than 21474836480 bytes/)
  })

  test('more entries than maxEntries', async () => {
    const entries = ['a', 'b', 'c', 'd', 'e'].map((path) => ({ path, body: path }))
    await assertRefused(entries, /"c".*more than 3 entries/, { maxEntries: 3 })
  })
})

describe('extractRelease fails cleanly on', () => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('')
  const validTgz = (): Buffer => gzipSync(tarBuffer([{ path: 'a.txt', body: lines }, { path: 'b.txt', body: 'b' }]))

  test('a corrupt gzip stream', async () => {
    const c = await newCase()
    const gz = validTgz()
    const middle = Math.floor(gz.length / 2)
    gz.fill(0x55, middle, middle + 64)
    await writeFile(c.tarball, gz)
    await assertFails(c, 'ROOKERY_BAD_ARCHIVE', /corrupt archive/)
  })

  test('a gzip stream cut in the middle of a file, which is then closed', async () => {
    const c = await newCase()
    const gz = gzipSync(tarBuffer([{ path: 'big', body: randomBytes(4 * 1024 * 1024) }]))
    await writeFile(c.tarball, gz.subarray(0, gz.length / 2))
    await assertFails(c, 'ROOKERY_BAD_ARCHIVE', /corrupt archive/)
    const open = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')))
    assert.deepEqual(open.filter((target) => target.startsWith(c.dir)), [], 'no descriptor left open under the case directory')
  })

  test('a truncated gzip stream', async () => {
    const c = await newCase()
    const gz = validTgz()
    await writeFile(c.tarball, gz.subarray(0, gz.length - 100))
    await assertFails(c, 'ROOKERY_BAD_ARCHIVE', /corrupt archive/)
  })

  test('a file that is not gzip at all', async () => {
    const c = await newCase()
    await writeFile(c.tarball, tarBuffer([{ path: 'plain', body: 'uncompressed' }]))
    await assertFails(c, 'ROOKERY_BAD_ARCHIVE', /corrupt archive/)
  })

  test('a gzip stream that is not a tar archive', async () => {
    const c = await newCase()
    await writeFile(c.tarball, gzipSync(Buffer.from('just some text, no tar headers in sight\n'.repeat(100))))
    await assertFails(c, 'ROOKERY_BAD_ARCHIVE', /corrupt archive/)
  })

  test('a missing tarball', async () => {
    const c = await newCase()
    await assertFails(c, 'ROOKERY_EXTRACT_IO', /no such file/)
  })

  test('an existing targetDir, which it leaves alone', async () => {
    const c = await newCase()
    await writeTgz(c.tarball, [{ path: 'f', body: 'new' }])
    await mkdir(c.target)
    await writeFile(join(c.target, 'f'), 'old')
    await assert.rejects(extractRelease(c.tarball, c.target), { code: 'ROOKERY_EXTRACT_EXISTS' })
    assert.deepEqual(await readdir(c.parent), ['v1'])
    assert.equal(await readFile(join(c.target, 'f'), 'utf8'), 'old')
  })

  test('refusals are VerifyErrors (never retried as-is)', async () => {
    const c = await newCase()
    await writeTgz(c.tarball, [{ path: '../x', body: 'x' }])
    await assert.rejects(extractRelease(c.tarball, c.target), VerifyError)
  })
})

describe('extractRelease with an expected sha256', () => {
  const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
  const body = Array.from({ length: 50_000 }, (_, i) => `row ${i}\n`).join('')
  const tgz = (): Buffer => gzipSync(tarBuffer([{ path: 'app/data.txt', body }, { path: 'app/b.txt', body: 'b' }]))

  test('a matching tarball is extracted, hashed from the same reads', async () => {
    const c = await newCase()
    const gz = tgz()
    await writeFile(c.tarball, gz)
    assert.deepEqual(counts(await extractRelease(c.tarball, c.target, {}, { sha256: sha256(gz) })), { files: 2, bytes: body.length + 1 })
    assert.equal(await readFile(join(c.target, 'app/data.txt'), 'utf8'), body)
  })

  test('a valid archive with another digest is refused and nothing is left', async () => {
    const c = await newCase()
    const gz = tgz()
    await writeFile(c.tarball, gz)
    const wrong = sha256(Buffer.from('another release'))
    await assert.rejects(extractRelease(c.tarball, c.target, {}, { sha256: wrong }), (err: unknown) => {
      assert.ok(err instanceof VerifyError)
      assert.equal(err.code, 'ROOKERY_CHECKSUM_MISMATCH')
      assert.match(err.message, new RegExp(`release.tar.gz has sha256 ${sha256(gz)}, expected ${wrong}`))
      return true
    })
    assert.deepEqual(await readdir(c.parent), [])
  })

  test('bytes after the gzip stream count: the whole file is hashed', async () => {
    const c = await newCase()
    const gz = Buffer.concat([tgz(), Buffer.alloc(4096, 0)])
    await writeFile(c.tarball, gz)
    const result = await extractRelease(c.tarball, c.target, {}, { sha256: sha256(gz) }).catch((err: Error) => err)
    if (result instanceof Error) {
      // zlib may refuse the trailing bytes; then it must be as a bad archive, not a checksum mismatch
      assert.equal((result as RookeryError).code, 'ROOKERY_BAD_ARCHIVE', result.message)
    } else {
      assert.equal(await readFile(join(c.target, 'app/b.txt'), 'utf8'), 'b')
    }
    const c2 = await newCase()
    await writeFile(c2.tarball, gz)
    await assert.rejects(extractRelease(c2.tarball, c2.target, {}, { sha256: sha256(gz.subarray(0, gz.length - 4096)) }), { code: 'ROOKERY_CHECKSUM_MISMATCH' })
    assert.deepEqual(await readdir(c2.parent), [])
  })

  test('a corrupt download is reported as a checksum mismatch, not as a bad release', async () => {
    const c = await newCase()
    const gz = tgz()
    const expected = sha256(gz)
    gz.fill(0x55, Math.floor(gz.length / 2), Math.floor(gz.length / 2) + 64)
    await writeFile(c.tarball, gz)
    await assert.rejects(extractRelease(c.tarball, c.target, {}, { sha256: expected }), { code: 'ROOKERY_CHECKSUM_MISMATCH' })
    assert.deepEqual(await readdir(c.parent), [])
  })

  test('a bad release whose digest matches stays a bad archive', async () => {
    const c = await newCase()
    const gz = gzipSync(Buffer.from('just some text, no tar headers in sight\n'.repeat(100)))
    await writeFile(c.tarball, gz)
    await assert.rejects(extractRelease(c.tarball, c.target, {}, { sha256: sha256(gz) }), { code: 'ROOKERY_BAD_ARCHIVE' })
  })
})

describe('extractRelease following a tarball that is still being written', () => {
  const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
  // 3 MiB that gzip cannot shrink: the tarball spans several of the extraction's 1 MiB reads.
  const body = randomBytes(3 * 1024 * 1024)
  const gz = gzipSync(tarBuffer([{ path: 'app/data.bin', body }, { path: 'app/b.txt', body: 'b' }]), { level: 1 })

  /** A download stand-in: `arrive(n)` writes the tarball's first n bytes to disk, `fail` gives up. */
  function download(file: string): GrowingFile & { arrive(n: number): Promise<void>; fail(err: Error): void; asked: number } {
    let written = 0
    let failure: Error | undefined
    let waiters: Array<{ bytes: number; resolve: () => void; reject: (err: Error) => void }> = []
    return {
      size: gz.length,
      asked: 0,
      onDisk(bytes: number) {
        this.asked = Math.max(this.asked, bytes)
        if (written >= bytes) return Promise.resolve()
        if (failure) return Promise.reject(failure)
        return new Promise((resolve, reject) => waiters.push({ bytes, resolve, reject }))
      },
      async arrive(n: number) {
        await appendFile(file, gz.subarray(written, n))
        written = n
        for (const w of waiters.filter((w) => w.bytes <= n)) w.resolve()
        waiters = waiters.filter((w) => w.bytes > n)
      },
      fail(err: Error) {
        failure = err
        for (const w of waiters) w.reject(err)
        waiters = []
      },
    }
  }

  const stagedBytes = async (c: Case): Promise<number> => {
    const staging = (await readdir(c.parent)).find((e) => e.startsWith('.staging-'))
    if (!staging) return 0
    return stat(join(c.parent, staging, 'app', 'data.bin')).then((s) => s.size, () => 0)
  }

  test('extracts the bytes on disk while the rest still arrives, and only once all of it is hashed does it finish', async () => {
    const c = await newCase()
    const dl = download(c.tarball)
    await dl.arrive(2 * 1024 * 1024)
    let finished = false
    const extraction = extractRelease(c.tarball, c.target, {}, { sha256: sha256(gz) }, dl).finally(() => (finished = true))
    // Nothing past the first 2 MiB exists yet: the extraction gets through what does, then waits.
    for (let i = 0; i < 100 && (await stagedBytes(c)) < 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 20))
    assert.ok((await stagedBytes(c)) >= 1024 * 1024, 'at least 1 MiB of the file extracted from the part on disk')
    assert.equal(finished, false)
    assert.equal(await exists(c.target), false, 'nothing is in place before the whole tarball is checked')
    await dl.arrive(gz.length)
    assert.deepEqual(counts(await extraction), { files: 2, bytes: body.length + 1 })
    assert.ok((await readFile(join(c.target, 'app/data.bin'))).equals(body))
    assert.deepEqual(await readdir(c.parent), ['v1'])
    assert.equal(dl.asked, gz.length, 'it never asked for bytes beyond the end')
  })

  test('a download that fails midway fails the extraction with nothing left behind', async () => {
    const c = await newCase()
    const dl = download(c.tarball)
    await dl.arrive(1536 * 1024)
    const extraction = extractRelease(c.tarball, c.target, {}, { sha256: sha256(gz) }, dl)
    for (let i = 0; i < 100 && (await stagedBytes(c)) === 0; i++) await new Promise((r) => setTimeout(r, 20))
    dl.fail(new Error('download of release.tar.gz stalled'))
    await assert.rejects(extraction, /download of release.tar.gz stalled/)
    assert.deepEqual(await readdir(c.parent), [])
  })

  test('with a growing tarball too, a bad release is told from a corrupt download once the file is whole', async () => {
    const c = await newCase()
    const bad = gzipSync(Buffer.from('just some text, no tar headers in sight\n'.repeat(100)))
    let written = false
    const dl: GrowingFile = {
      size: bad.length,
      onDisk: async (bytes) => {
        if (bytes >= bad.length && !written) {
          await writeFile(c.tarball, bad)
          written = true
        }
      },
    }
    await assert.rejects(extractRelease(c.tarball, c.target, {}, { sha256: sha256(bad) }, dl), { code: 'ROOKERY_BAD_ARCHIVE' })
    await assert.rejects(extractRelease(c.tarball, c.target, {}, { sha256: sha256(Buffer.from('other')) }, dl), { code: 'ROOKERY_CHECKSUM_MISMATCH' })
    assert.deepEqual(await readdir(c.parent), [])
  })
})
