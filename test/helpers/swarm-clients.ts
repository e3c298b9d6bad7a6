import type WebTorrent from 'webtorrent'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'

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
