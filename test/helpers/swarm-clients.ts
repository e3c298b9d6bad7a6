import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before } from 'node:test'
import type WebTorrent from 'webtorrent'
import { makeTorrent, type ReleaseTorrent } from '../../src/release/torrent.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'
import type { RawPeer } from './raw-peer.ts'

/** Port 1 of loopback, where nothing answers: the swarm tests hand peers to the torrents directly. */
export const NOWHERE = 'http://127.0.0.1:1'

/**
 * Writes `content` as `<dir>/<name>` and makes its torrent, announcing to NOWHERE, with its webseed there
 * too unless given one. `pieceLength` as the test needs it (else the release rule's).
 */
export async function writeSeedFile(dir: string, name: string, content: Uint8Array, opts: { pieceLength?: number; webseed?: string } = {}): Promise<ReleaseTorrent> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, name), content)
  return makeTorrent(join(dir, name), { name, announce: `${NOWHERE}/announce`, webseed: opts.webseed ?? `${NOWHERE}/x`, ...(opts.pieceLength ? { pieceLength: opts.pieceLength } : {}) })
}

/** Swarm clients on free loopback ports for a test file, destroyed together in its `after`. */
export class SwarmClients {
  readonly #clients: WebTorrent[] = []

  /** A new client, listening (its `torrentPort` is known). */
  async create(): Promise<WebTorrent> {
    const client = createSwarmClient({ torrentPort: 0 })
    this.#clients.push(client)
    await whenListening(client, 0)
    return client
  }

  async destroyAll(): Promise<void> {
    for (const client of this.#clients.splice(0)) await destroySwarmClient(client)
  }
}

/**
 * A test file's release: `content` written as `<tmp>/seed/<name>` with its torrent (see writeSeedFile),
 * made in `before`; the swarm clients and bare peers the tests add are closed, and the temp dir removed,
 * in `after`. Read `tmp`, `torrentFile` and `infoHash` inside tests, once `before` has run.
 */
export function seedFileFixture(prefix: string, name: string, content: Uint8Array, pieceLength: number) {
  const fixture = { tmp: '', seedDir: '', torrentFile: Buffer.alloc(0) as Buffer, infoHash: '', clients: new SwarmClients(), peers: [] as RawPeer[] }
  before(async () => {
    fixture.tmp = await mkdtemp(join(tmpdir(), prefix))
    fixture.seedDir = join(fixture.tmp, 'seed')
    const made = await writeSeedFile(fixture.seedDir, name, content, { pieceLength })
    fixture.torrentFile = made.torrent
    fixture.infoHash = made.infoHash
  })
  after(async () => {
    for (const p of fixture.peers) p.close()
    await fixture.clients.destroyAll()
    await rm(fixture.tmp, { recursive: true, force: true })
  })
  return fixture
}
