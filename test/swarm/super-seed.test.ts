import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type WebTorrent from 'webtorrent'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'
import { seedTorrent } from '../../src/swarm/download.ts'
import { leastHeld, superSeed } from '../../src/swarm/super-seed.ts'
import { waitFor } from '../helpers/processes.ts'
import { RawPeer } from '../helpers/raw-peer.ts'
import { writeSeedFile } from '../helpers/swarm-clients.ts'

const KiB = 1024
const PIECE = 256 * KiB
const BLOCK = 16 * KiB
const PIECES = 16
const CONTENT = randomBytes(PIECES * PIECE - 1000) // the last piece is short

describe('leastHeld', () => {
  test('picks the least held piece not excluded', () => {
    assert.equal(leastHeld([3, 1, 0, 2], [0, 0, 0, 0]), 2)
    assert.equal(leastHeld([3, 1, 0, 2], [0, 0, 1, 0]), 1)
    assert.equal(leastHeld([3, 1, 0, 2], [1, 2, 4, 8]), -1)
  })

  test('between equally held pieces, takes the first (pieces enter the swarm front to back)', () => {
    assert.equal(leastHeld([1, 0, 0, 0, 1], [0, 0, 0, 0, 0]), 1)
    assert.equal(leastHeld([1, 0, 0, 0, 1], [0, 1, 0, 0, 0]), 2)
    assert.equal(leastHeld([2, 2, 2], [0, 0, 0]), 0)
    assert.equal(leastHeld([2, 2, 1, 1], [0, 0, 2, 0]), 3)
  })
})

/** CONTENT as `<dir>/app-v1.tar.gz` and its torrent; seeders are reached directly. */
const writeRelease = (dir: string) => writeSeedFile(dir, 'app-v1.tar.gz', CONTENT, { pieceLength: PIECE })

describe('super-seeding origin', { timeout: 30_000 }, () => {
  let tmp = ''
  let client: WebTorrent
  let infoHash = ''
  const peers: RawPeer[] = []
  const peer = (fast: boolean) => {
    const p = new RawPeer(client.torrentPort, infoHash, fast, PIECES)
    peers.push(p)
    return p
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rookery-superseed-'))
    const made = await writeRelease(tmp)
    infoHash = made.infoHash
    client = createSwarmClient({ torrentPort: 0 })
    await whenListening(client, 0)
    await seedTorrent(client, made.torrent, tmp, { skipVerify: true, superSeed: true })
  })

  after(async () => {
    for (const p of peers) p.close()
    await destroySwarmClient(client)
    await rm(tmp, { recursive: true, force: true })
  })

  test('offers each peer a few pieces, different ones, instead of claiming all of them', async () => {
    const a = peer(true)
    const b = peer(false)
    await waitFor('both peers to get two offers', () => a.offered.length >= 2 && b.offered.length >= 2, 5000)
    await new Promise((r) => setTimeout(r, 200)) // no more offers arrive unasked
    assert.equal(a.initial, 'have-none')
    assert.equal(b.initial, 'bitfield with 0 pieces')
    assert.equal(a.offered.length, 2)
    assert.equal(b.offered.length, 2)
    assert.deepEqual(a.offered.filter((i) => b.offered.includes(i)), [], 'no piece offered to both while others were never offered')
  })

  test('serves an offered piece and offers the next once every block was asked for', async () => {
    const a = peers[0]!
    const b = peers[1]!
    a.wire.interested()
    await waitFor('the seeder to unchoke', () => !a.wire.peerChoking, 5000)
    const index = a.offered[0]!
    const length = index === PIECES - 1 ? CONTENT.length - index * PIECE : PIECE
    const blocks = await Promise.all(Array.from({ length: Math.ceil(length / BLOCK) }, (_, k) => a.request(index, k * BLOCK, Math.min(BLOCK, length - k * BLOCK))))
    assert.ok(Buffer.concat(blocks).equals(CONTENT.subarray(index * PIECE, index * PIECE + length)), 'the served piece matches the file')
    await waitFor('a third offer', () => a.offered.length >= 3, 5000)
    for (const next of a.offered.slice(2)) assert.ok(!a.offered.slice(0, 2).includes(next) && !b.offered.includes(next), `piece ${next} was not offered before`)
  })

  test('offers another piece when the peer announces one it got elsewhere', async () => {
    const b = peers[1]!
    const got = b.offered[0]!
    b.wire.have(got)
    await waitFor('a replacement offer', () => b.offered.length === 3, 5000)
    assert.notEqual(b.offered[2], got)
  })

  test('before every piece has gone out, offers no piece twice: a peer left without offers gets some once all are out', async () => {
    // Peers a and b hold or were offered 6 pieces; 10 are free, and six new peers would take two each.
    const fresh = [peer(true), peer(true), peer(true), peer(true), peer(true), peer(true)]
    const freshOffers = () => fresh.reduce((n, p) => n + p.offered.length, 0)
    await waitFor('the 10 free pieces offered', () => freshOffers() >= 10, 5000)
    await new Promise((r) => setTimeout(r, 300)) // no more offers arrive while no piece is free
    assert.equal(freshOffers(), 10)
    const all = peers.flatMap((p) => p.offered)
    assert.equal(all.length, PIECES, 'each piece offered exactly once')
    assert.equal(new Set(all).size, PIECES)
    const starved = fresh.find((p) => p.offered.length === 0)
    assert.ok(starved, `a new peer left without offers (offers per new peer: ${fresh.map((p) => p.offered.length).join(' ')})`)
    // Every peer announces what it was offered: every piece is out, and the starved peer is fed at once
    // (not at the next offer time-out, 15 s away), with what the swarm holds least.
    for (const p of peers) for (const index of p.offered) p.wire.have(index)
    await waitFor('offers to the starved peer', () => starved.offered.length >= 2, 2000)
  })
})

describe('super-seeding offers that are never asked for', { timeout: 30_000 }, () => {
  test('are withdrawn after the time-out and replaced by other pieces', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'rookery-superseed-'))
    const client = createSwarmClient({ torrentPort: 0 })
    const peers: RawPeer[] = []
    try {
      const made = await writeRelease(tmp)
      await whenListening(client, 0)
      const torrent = client.add(made.torrent, { path: tmp, skipVerify: true })
      superSeed(torrent as Parameters<typeof superSeed>[0], { windowMs: 1000, offerTimeoutMs: 300 })
      await new Promise((resolve) => torrent.once('ready', resolve))
      const silent = new RawPeer(client.torrentPort, made.infoHash, true, PIECES)
      peers.push(silent)
      await waitFor('two first offers', () => silent.offered.length >= 2, 5000)
      const first = silent.offered.slice(0, 2)
      // The peer asks for nothing and announces nothing: after 300 ms its two offers go to other pieces.
      await waitFor('replacement offers', () => silent.offered.length >= 4, 5000)
      assert.deepEqual(silent.offered.slice(2).filter((i) => first.includes(i)), [], 'a withdrawn piece is not offered to the same peer again')
    } finally {
      for (const p of peers) p.close()
      await destroySwarmClient(client)
      await rm(tmp, { recursive: true, force: true })
    }
  })
})

/**
 * Runs `body` against a fresh super-seeding origin (its own directory and client, reports of every piece
 * out collected), with `peer()` connecting bare peers to it; all closed and removed afterwards.
 */
async function withOrigin(body: (origin: { peer(): RawPeer; reports: Array<{ ms: number }> }) => Promise<void>): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'rookery-superseed-'))
  const client = createSwarmClient({ torrentPort: 0 })
  const peers: RawPeer[] = []
  const reports: Array<{ ms: number }> = []
  try {
    const made = await writeRelease(tmp)
    await whenListening(client, 0)
    await seedTorrent(client, made.torrent, tmp, { skipVerify: true, superSeed: true, onEveryPieceOut: (info) => reports.push(info) })
    const peer = () => {
      const p = new RawPeer(client.torrentPort, made.infoHash, true, PIECES)
      peers.push(p)
      return p
    }
    await body({ peer, reports })
  } finally {
    for (const p of peers) p.close()
    await destroySwarmClient(client)
    await rm(tmp, { recursive: true, force: true })
  }
}

describe('super-seeding origin, every piece out once', { timeout: 30_000 }, () => {
  test('is reported once, when the last piece was asked for in full or announced by a peer, not before', async () => {
    await withOrigin(async ({ peer, reports }) => {
      const a = peer()
      await waitFor('the first offers', () => a.offered.length >= 2, 5000)
      a.wire.interested()
      await waitFor('the seeder to unchoke', () => !a.wire.peerChoking, 5000)
      // Peer a asks for all of every piece it is offered, until 15 of the 16 have gone out.
      const asked = new Set<number>()
      while (asked.size < PIECES - 1) {
        await waitFor('an offer not yet asked for', () => a.offered.some((i) => !asked.has(i)), 5000)
        const index = a.offered.find((i) => !asked.has(i))!
        asked.add(index)
        const length = index === PIECES - 1 ? CONTENT.length - index * PIECE : PIECE
        await Promise.all(Array.from({ length: Math.ceil(length / BLOCK) }, (_, k) => a.request(index, k * BLOCK, Math.min(BLOCK, length - k * BLOCK))))
      }
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(reports.length, 0, 'not reported while a piece has not gone out')
      // The last piece reaches the swarm another way: a second peer announces it.
      const last = Array.from({ length: PIECES }, (_, i) => i).find((i) => !asked.has(i))!
      const b = peer()
      await waitFor("the second peer to get the seeder's have-none", () => b.initial === 'have-none', 5000)
      await new Promise((r) => setTimeout(r, 200))
      assert.deepEqual(b.offered, [], 'the one piece not out yet is offered to a: none for b')
      b.wire.have(last)
      await waitFor('the report', () => reports.length > 0, 5000)
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(reports.length, 1, 'reported once')
      assert.ok(reports[0]!.ms >= 0 && reports[0]!.ms < 30_000, `ms from the first offer: ${reports[0]!.ms}`)
    })
  })
})

describe('super-seeding origin, a peer leaving before every piece is out', { timeout: 30_000 }, () => {
  test('its offers, free again, go to a peer left without offers, and to nobody else', async () => {
    await withOrigin(async ({ peer }) => {
      // Eight peers take two offers each: all 16 pieces. A ninth gets none while nothing is free.
      const first = Array.from({ length: PIECES / 2 }, () => peer())
      await waitFor('every piece offered once', () => first.every((p) => p.offered.length >= 2), 5000)
      const waiting = peer()
      await waitFor("the ninth peer to get the seeder's have-none", () => waiting.initial === 'have-none', 5000)
      await new Promise((r) => setTimeout(r, 300))
      assert.deepEqual(waiting.offered, [], 'nothing is free')
      const leaving = first[0]!
      const freed = [...leaving.offered].sort((x, y) => x - y)
      leaving.close()
      await waitFor('the freed pieces offered to the waiting peer', () => waiting.offered.length >= 2, 5000)
      await new Promise((r) => setTimeout(r, 300))
      assert.deepEqual([...waiting.offered].sort((x, y) => x - y), freed)
      for (const p of first.slice(1)) assert.equal(p.offered.length, 2, 'a peer with full offers was offered more')
    })
  })
})

describe('super-seeding origin, a complete peer', { timeout: 30_000 }, () => {
  test('a peer announcing every piece with have-all (BEP 6) is offered nothing more and counts as holding them all', async () => {
    await withOrigin(async ({ peer, reports }) => {
      // A finished host connecting to the origin, as webtorrent's wire says it: have-all. The seeder speaks
      // first (have-none, two offers); then the peer's have-all arrives.
      const complete = peer()
      await waitFor('the first offers', () => complete.offered.length >= 2, 5000)
      const offeredBefore = complete.offered.length
      ;(complete.wire as unknown as { haveAll(): void }).haveAll()
      await waitFor('every piece counted as out', () => reports.length > 0, 5000)
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(complete.offered.length, offeredBefore, 'the complete peer was offered more pieces')
      // The pieces stay free for the others: a new peer is offered two.
      const fresh = peer()
      await waitFor('offers to a new peer', () => fresh.offered.length >= 2, 5000)
    })
  })
})
