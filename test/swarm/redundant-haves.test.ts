import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { test } from 'node:test'
import { seedTorrent, startDownload } from '../../src/swarm/download.ts'
import { WANTS_EVERY_HAVE, wantsEveryHave } from '../../src/swarm/redundant-haves.ts'
import { waitFor } from '../helpers/processes.ts'
import { RawPeer } from '../helpers/raw-peer.ts'
import { seedFileFixture } from '../helpers/swarm-clients.ts'

// Which peers a downloading host tells about the pieces it completes (HAVE): only those lacking the piece,
// except a peer that asks for every HAVE, as the super-seeding origin does.

const KiB = 1024
const PIECES = 8
const CONTENT = randomBytes(PIECES * 16 * KiB)
const NAME = 'app-v1.tar.gz'
const ALL = Array.from({ length: PIECES }, (_, i) => i)

// Peers are connected directly.
const release = seedFileFixture('rookery-haves-', NAME, CONTENT, 16 * KiB)
const { peers } = release
const swarmClient = () => release.clients.create()

test('a host announces a piece only to peers without it, and every piece to a peer asking for every HAVE', { timeout: 30_000 }, async () => {
  const host = await swarmClient()
  const download = await startDownload(host, release.torrentFile, { dir: join(release.tmp, 'host'), stallTimeoutMs: 20_000, webseedFallbackMs: 60_000 })
  const peer = (options: ConstructorParameters<typeof RawPeer>[4]) => {
    const p = new RawPeer(host.torrentPort, release.infoHash, true, PIECES, options)
    peers.push(p)
    return p
  }
  const lacksAll = peer({ has: () => false })
  const hasEven = peer({ has: (i) => i % 2 === 0 })
  const hasAll = peer({ has: () => true })
  const hasAllWantsEvery = peer({ has: () => true, extendedHandshake: { [WANTS_EVERY_HAVE]: 1 } })
  // Their pieces and handshakes must be known to the host before it completes any piece.
  const wires = download.torrent.wires
  await waitFor('the host to see the four peers', () => wires.length === 4 && wires.every((w) => w.type !== 'webSeed' && w.peerExtendedHandshake?.m), 5000)
  await new Promise((r) => setTimeout(r, 200)) // their bitfields follow the handshakes

  const seeder = await swarmClient()
  await seedTorrent(seeder, release.torrentFile, release.seedDir, { skipVerify: true })
  download.torrent.addPeer(`127.0.0.1:${seeder.torrentPort}`)
  await download.done
  await waitFor('every HAVE to reach the peer lacking all pieces', () => lacksAll.offered.length === PIECES, 5000)
  await waitFor('every HAVE to reach the peer asking for them', () => hasAllWantsEvery.offered.length === PIECES, 5000)
  await new Promise((r) => setTimeout(r, 200)) // HAVEs to the others would have come with these

  assert.deepEqual([...lacksAll.offered].sort((a, b) => a - b), ALL)
  assert.deepEqual([...hasEven.offered].sort((a, b) => a - b), ALL.filter((i) => i % 2 === 1), 'only the pieces it lacks')
  assert.deepEqual(hasAll.offered, [], 'no HAVE for pieces it has')
  assert.deepEqual([...hasAllWantsEvery.offered].sort((a, b) => a - b), ALL)
})

test('the super-seeding origin asks every peer for every HAVE', { timeout: 30_000 }, async () => {
  const origin = await swarmClient()
  await seedTorrent(origin, release.torrentFile, release.seedDir, { skipVerify: true, superSeed: true })
  const p = new RawPeer(origin.torrentPort, release.infoHash, true, PIECES)
  peers.push(p)
  await waitFor('the origin\'s extended handshake', () => p.wire.peerExtendedHandshake?.m !== undefined, 5000)
  assert.equal(p.wire.peerExtendedHandshake[WANTS_EVERY_HAVE], 1)

  const plain = await swarmClient()
  await seedTorrent(plain, release.torrentFile, release.seedDir, { skipVerify: true })
  const q = new RawPeer(plain.torrentPort, release.infoHash, true, PIECES)
  peers.push(q)
  await waitFor('the plain seeder\'s extended handshake', () => q.wire.peerExtendedHandshake?.m !== undefined, 5000)
  assert.equal(q.wire.peerExtendedHandshake[WANTS_EVERY_HAVE], undefined, 'only a super-seeder asks')
})

test('a host hears the key also when the origin connects to it, and downloads from it', { timeout: 30_000 }, async () => {
  const host = await swarmClient()
  const download = await startDownload(host, release.torrentFile, { dir: join(release.tmp, 'dialled'), stallTimeoutMs: 20_000, webseedFallbackMs: 60_000 })
  const origin = await swarmClient()
  const seeded = await seedTorrent(origin, release.torrentFile, release.seedDir, { skipVerify: true, superSeed: true })
  seeded.addPeer(`127.0.0.1:${host.torrentPort}`)
  await download.done
  assert.equal(download.torrent.wires.filter(wantsEveryHave).length, 1, 'the origin\'s outgoing connection carries the key')
})
