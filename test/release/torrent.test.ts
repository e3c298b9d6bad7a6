import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import createTorrent from 'create-torrent'
import { VerifyError } from '../../src/errors.ts'
import { makeTorrent, pieceLengthFor, readTorrent } from '../../src/release/torrent.ts'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

const OPTS = {
  name: 'app-v1.tar.gz',
  announce: 'http://tracker.example/announce',
  webseed: 'http://server.example/app/v1/app-v1.tar.gz',
}

// 600 KiB: three pieces of 256 KiB, the last one short
const CONTENT = Buffer.from(Uint8Array.from({ length: 600 * KiB }, (_, i) => i % 251))

let tmp = ''
let file = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-torrent-'))
  file = join(tmp, 'incoming-upload.bin')
  await writeFile(file, CONTENT)
})
after(() => rm(tmp, { recursive: true, force: true }))

const sha1 = (buf: Buffer): Buffer => createHash('sha1').update(buf).digest()

describe('pieceLengthFor', () => {
  test('picks the smallest length giving at most 1024 pieces, capped at 4 MiB', () => {
    const cases: Array<[number, number]> = [
      [32 * MiB, 256 * KiB],
      [256 * MiB, 256 * KiB],
      [256 * MiB + 1, 512 * KiB],
      [512 * MiB, 512 * KiB],
      [512 * MiB + 1, 1 * MiB],
      [1 * GiB, 1 * MiB],
      [1 * GiB + 1, 2 * MiB],
      [2 * GiB, 2 * MiB],
      [2 * GiB + 1, 4 * MiB],
      [4 * GiB, 4 * MiB],
      [100 * GiB, 4 * MiB],
    ]
    for (const [size, expected] of cases) assert.equal(pieceLengthFor(size), expected, `size ${size}`)
  })

  test('halves the length for a release under 32 MiB until it has 128 pieces, down to 16 KiB', () => {
    const cases: Array<[number, number]> = [
      [0, 16 * KiB],
      [1, 16 * KiB],
      [2 * MiB, 16 * KiB],
      [4 * MiB - 1, 16 * KiB],
      [4 * MiB, 32 * KiB],
      [8 * MiB, 64 * KiB],
      [16 * MiB, 128 * KiB],
      [32 * MiB - 1, 128 * KiB],
    ]
    for (const [size, expected] of cases) assert.equal(pieceLengthFor(size), expected, `size ${size}`)
    for (const size of [4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB]) assert.equal(Math.ceil(size / pieceLengthFor(size)), 128, `pieces of ${size}`)
  })
})

describe('makeTorrent', () => {
  test('builds a private single-file torrent named opts.name, with one tracker and one web seed', async () => {
    const t = await makeTorrent(file, OPTS)
    assert.equal(t.name, OPTS.name)
    assert.equal(t.length, CONTENT.length)
    assert.equal(t.pieceLength, 16 * KiB, '600 KiB: under 32 MiB, so pieces short enough for 128 of them')
    assert.ok(Buffer.isBuffer(t.torrent))

    const info = await readTorrent(t.torrent)
    assert.deepEqual(info, {
      infoHash: t.infoHash,
      name: OPTS.name,
      length: CONTENT.length,
      pieceLength: 16 * KiB,
      announce: [OPTS.announce],
      urlList: [OPTS.webseed],
      private: true,
    })
    const text = t.torrent.toString('latin1')
    assert.ok(text.includes('10:created by7:rookery'))
    assert.ok(text.includes('13:creation datei946684800e'))
  })

  test('computes the infohash BitTorrent clients do: SHA-1 of the bencoded info dictionary', async () => {
    const t = await makeTorrent(file, OPTS)
    const piece = 16 * KiB
    const indexes = Array.from({ length: Math.ceil(CONTENT.length / piece) }, (_, i) => i)
    const pieces = Buffer.concat(indexes.map((i) => sha1(CONTENT.subarray(i * piece, (i + 1) * piece))))
    const infoDict = Buffer.concat([
      Buffer.from(`d6:lengthi${CONTENT.length}e4:name${OPTS.name.length}:${OPTS.name}12:piece lengthi${piece}e`),
      Buffer.from(`6:pieces${pieces.length}:`),
      pieces,
      Buffer.from('7:privatei1ee'),
    ])
    assert.equal(t.infoHash, sha1(infoDict).toString('hex'))
    assert.ok(t.torrent.includes(infoDict))
    // pinned, so a dependency upgrade or a change of pieceLengthFor that changes the hash (and splits
    // publishers from servers of another version) fails here
    assert.equal(t.infoHash, '7962756150114c2814986453574d8dd2657ea32c')
  })

  test('is deterministic, and the infohash depends on content and name, not on file path or URLs', async () => {
    const a = await makeTorrent(file, OPTS)
    const b = await makeTorrent(file, OPTS)
    assert.ok(a.torrent.equals(b.torrent))

    await mkdir(join(tmp, 'elsewhere'), { recursive: true })
    const copy = join(tmp, 'elsewhere', 'other-name.tgz')
    await writeFile(copy, CONTENT)
    const c = await makeTorrent(copy, OPTS)
    assert.ok(a.torrent.equals(c.torrent))

    const moved = await makeTorrent(file, { ...OPTS, announce: 'http://other/announce', webseed: 'http://other/x' })
    assert.equal(moved.infoHash, a.infoHash)
    assert.ok(!moved.torrent.equals(a.torrent))

    const renamed = await makeTorrent(file, { ...OPTS, name: 'app-v2.tar.gz' })
    assert.notEqual(renamed.infoHash, a.infoHash)

    const changed = join(tmp, 'changed.bin')
    await writeFile(changed, Buffer.concat([CONTENT.subarray(0, -1), Buffer.from([0xff])]))
    assert.notEqual((await makeTorrent(changed, OPTS)).infoHash, a.infoHash)
  })

  test('fails with a RookeryError for a missing file', async () => {
    await assert.rejects(makeTorrent(join(tmp, 'missing.bin'), OPTS), { code: 'ROOKERY_TORRENT_IO' })
  })
})

describe('readTorrent rejects', () => {
  const rejects = async (buf: Buffer, message: RegExp): Promise<void> => {
    await assert.rejects(readTorrent(buf), (err: unknown) => {
      assert.ok(err instanceof VerifyError, String(err))
      assert.equal(err.code, 'ROOKERY_BAD_TORRENT')
      assert.match(err.message, message)
      return true
    })
  }

  test('garbage', async () => {
    await rejects(Buffer.from('this is not bencode at all'), /invalid \.torrent/)
    await rejects(Buffer.alloc(0), /invalid \.torrent/)
    await rejects(Buffer.from([0xff, 0x00, 0x13, 0x37, 0x42]), /invalid \.torrent/)
  })

  test('a bencoded dictionary with no info', async () => {
    await rejects(Buffer.from('d8:announce3:fooe'), /info/)
  })

  test('20 bytes, which parse-torrent would take as a bare infohash', async () => {
    await rejects(Buffer.alloc(20, 0xab), /infohash/)
  })

  test('a multi-file torrent', async () => {
    const dir = join(tmp, 'multi')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'a'), 'a')
    await writeFile(join(dir, 'b'), 'b')
    const multi = await new Promise<Uint8Array>((resolve, reject) =>
      createTorrent(dir, { announceList: [] }, (err, t) => (err ? reject(err) : resolve(t))),
    )
    await rejects(Buffer.from(multi), /multi-file/)
  })

  test('piece hashes that do not match the length', async () => {
    const pieces = Buffer.alloc(20)
    const forged = Buffer.concat([
      Buffer.from(`d4:infod6:lengthi${1 * MiB}e4:name1:x12:piece lengthi${256 * KiB}e6:pieces20:`),
      pieces,
      Buffer.from('ee'),
    ])
    await rejects(forged, /1 piece hashes for 1048576 bytes/)
  })
})
