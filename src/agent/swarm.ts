import type WebTorrent from 'webtorrent'
import type { Logger } from '../log.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../swarm/client.ts'
import { Linger } from './linger.ts'

/**
 * The webtorrent client of a deploy and of the seed window after it. The agent imports this module (and
 * with it webtorrent, about 40 MB of RSS with a listening client) only when a release must be downloaded,
 * and closes the client once no torrent is seeding any more: an idle agent has no swarm at all.
 */
export interface Swarm {
  client: WebTorrent
  linger: Linger
  /** Stops the seeding torrents and closes the client and its listening socket. */
  close(): Promise<void>
}

export interface SwarmOptions {
  torrentPort: number
  /** Seconds of each peer's rate to keep requested. */
  requestPipelineSeconds: number
  log: Logger
  onUploaded: (app: string, bytes: number) => void
  /** The last seeding torrent stopped. */
  onIdle: () => void
}

export async function openSwarm(options: SwarmOptions): Promise<Swarm> {
  const client = createSwarmClient({ torrentPort: options.torrentPort, requestPipelineSeconds: options.requestPipelineSeconds })
  try {
    await whenListening(client, options.torrentPort)
  } catch (err) {
    await destroySwarmClient(client)
    throw err
  }
  client.on('error', (err: Error) => options.log.error({ err: err.message }, 'swarm error'))
  options.log.info({ torrent_port: client.torrentPort }, 'swarm client listening')
  const linger = new Linger(client, options.log, options.onUploaded, options.onIdle)
  return {
    client,
    linger,
    async close() {
      await linger.stopAll()
      await destroySwarmClient(client)
      options.log.info('swarm client closed')
    },
  }
}
