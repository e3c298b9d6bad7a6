import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type WebTorrent from 'webtorrent'
import { makeTorrent, type ReleaseTorrent } from '../../src/release/torrent.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'

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
