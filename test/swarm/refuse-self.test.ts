import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { Torrent, Wire } from 'webtorrent'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'
import { seedTorrent, startDownload } from '../../src/swarm/download.ts'
import { writeSeedFile } from '../helpers/swarm-clients.ts'

const CONTENT = randomBytes(16 * 256 * 1024 - 1000)

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const fn of cleanups.reverse()) await fn()
})

test('a super-seeding origin handed its own address does not connect to itself, and still serves real peers', { timeout: 30_000 }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'rookery-refuse-self-'))
  cleanups.push(() => rm(tmp, { recursive: true, force: true }))
  // Peers are handed to the torrents directly, as a tracker would.
  const made = await writeSeedFile(join(tmp, 'origin'), 'app-v1.tar.gz', CONTENT)

  const origin = createSwarmClient({ torrentPort: 0 })
  cleanups.push(() => destroySwarmClient(origin))
  await whenListening(origin, 0)
  const seeded = await seedTorrent(origin, made.torrent, join(tmp, 'origin'), { skipVerify: true, superSeed: true })
  const wires: Array<string | undefined> = []
  seeded.on('wire', (wire: Wire) => {
    if (wire.type !== 'webSeed') wires.push(wire.peerId) // the torrent's webseed URL is a wire too
  })

  // The tracker lists every peer of the swarm, the origin's own address included. webtorrent skips only
  // 127.0.0.1 with its own port; any other address of the host (here another loopback one) got through.
  seeded.addPeer(`127.0.0.2:${origin.torrentPort}`)

  const host = createSwarmClient({ torrentPort: 0 })
  cleanups.push(() => destroySwarmClient(host))
  await whenListening(host, 0)
  host.once('add', (torrent: Torrent) => torrent.once('ready', () => torrent.addPeer(`127.0.0.1:${origin.torrentPort}`)))
  await (await startDownload(host, made.torrent, { dir: join(tmp, 'host'), stallTimeoutMs: 10_000 })).done
  assert.ok((await readFile(join(tmp, 'host', 'app-v1.tar.gz'))).equals(CONTENT), 'the host got the release from the origin')

  assert.deepEqual(wires, [host.peerId], 'the origin talks to the host only, never to itself')
})
