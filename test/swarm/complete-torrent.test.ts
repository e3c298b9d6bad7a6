import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import parseTorrent from 'parse-torrent'
import type { Torrent } from 'webtorrent'
import { seedTorrent } from '../../src/swarm/download.ts'
import { waitFor } from '../helpers/processes.ts'
import { RawPeer } from '../helpers/raw-peer.ts'
import { seedFileFixture } from '../helpers/swarm-clients.ts'

const PIECE = 16 * 1024
const PIECES = 8
const CONTENT = randomBytes(PIECES * PIECE)
/** The pieces the bare peer claims: 1, 3, 5 and 7. */
const claims = (index: number) => index % 2 === 1

/** webtorrent's private per-piece availability count (the picker's input), pinned version. */
const availability = (torrent: Torrent) => Array.from((torrent as unknown as { _rarityMap: { _pieces: number[] } })._rarityMap._pieces)

describe('a complete torrent skips the bookkeeping of what to download (src/swarm/complete-torrent.ts)', { timeout: 30_000 }, () => {
  const release = seedFileFixture('rookery-complete-', 'app-v1.tar.gz', CONTENT, PIECE)
  const { clients, peers } = release

  /** A bare peer claiming pieces 1, 3, 5, 7, connected to `port`; resolves once `torrent` has its wire and bitfield. */
  async function connectClaimingPeer(port: number, torrent: Torrent): Promise<RawPeer> {
    const peer = new RawPeer(port, release.infoHash, true, PIECES, { has: claims })
    peers.push(peer)
    await waitFor('the peer\'s bitfield to arrive', () => torrent.wires.some((w) => (w as unknown as { peerPieces: { get(i: number): boolean } }).peerPieces.get(1)), 5000)
    return peer
  }

  test('a seeder does not recount piece availability when a peer connects, is not interested in it, and serves it', async () => {
    const client = await clients.create()
    const torrent = await seedTorrent(client, release.torrentFile, release.seedDir, { skipVerify: true })
    assert.equal(torrent.done, true)
    const peer = await connectClaimingPeer(client.torrentPort, torrent)
    let interested = false
    peer.wire.on('interested', () => (interested = true))
    await new Promise((r) => setTimeout(r, 200))
    // webtorrent's recount (every peer x every piece, on each connection) would have counted the bitfield.
    assert.deepEqual(availability(torrent), new Array(PIECES).fill(0))
    assert.equal(interested, false, 'a complete seeder said it was interested in a peer')
    peer.wire.interested()
    await waitFor('the seeder to unchoke', () => !peer.wire.peerChoking, 5000)
    const block = await peer.request(2, 0, PIECE)
    assert.ok(block.equals(CONTENT.subarray(2 * PIECE, 3 * PIECE)))
  })

  test('a download still counts what its peers have, and is interested in a peer with pieces it lacks', async () => {
    const client = await clients.create()
    // Without its web seed (as startDownload adds a torrent), whose wire would claim pieces too.
    const parsed = await parseTorrent(release.torrentFile)
    parsed.urlList = []
    const torrent = client.add(parsed, { path: join(release.tmp, 'download') })
    await new Promise((resolve) => torrent.once('ready', resolve))
    assert.equal(torrent.done, false)
    const peer = await connectClaimingPeer(client.torrentPort, torrent)
    await waitFor('the downloader to say it is interested', () => (peer.wire as unknown as { peerInterested: boolean }).peerInterested, 5000)
    assert.deepEqual(availability(torrent), Array.from({ length: PIECES }, (_, i) => (claims(i) ? 1 : 0)))
  })
})
