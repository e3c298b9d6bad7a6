import { Server as TrackerServer } from 'bittorrent-tracker'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log.ts'

export interface TrackerOptions {
  /** Re-announce interval handed to peers, in ms. */
  intervalMs: number
  /** Peers remembered per swarm (LRU); the library default of 1000 would drop peers in a large fleet. */
  maxPeersPerSwarm: number
  /** Only published torrents are tracked: anything else is refused. */
  isPublished: (infoHash: string) => boolean
  log: Logger
}

/**
 * The BitTorrent HTTP tracker (BEP 3, BEP 23 compact peers), from bittorrent-tracker, mounted on rookery's
 * own HTTP server: the library's own server would answer every route, and its UDP and WebSocket
 * transports are not needed inside a datacenter.
 */
export class Tracker {
  readonly #server: TrackerServer

  constructor(options: TrackerOptions) {
    this.#server = new TrackerServer({
      http: false,
      udp: false,
      ws: false,
      stats: false,
      interval: options.intervalMs,
      peersCacheLength: options.maxPeersPerSwarm,
      // A peer that stops announcing for three intervals is gone.
      peersCacheTtl: Math.max(options.intervalMs * 3, 60_000),
      filter: (infoHash, _params, cb) =>
        options.isPublished(infoHash) ? cb(null) : cb(new Error('torrent not published on this server')),
    })
    // Bad announces are the client's problem: log at debug, never crash the server.
    this.#server.on('warning', (err: Error) => options.log.debug({ err: err.message }, 'tracker request refused'))
    this.#server.on('error', (err: Error) => options.log.warn({ err: err.message }, 'tracker error'))
  }

  handle(req: IncomingMessage, res: ServerResponse, action: 'announce' | 'scrape'): void {
    res.setHeader('Content-Type', 'text/plain')
    this.#server.onHttpRequest(req, res, { action })
  }

  /** Seeders and leechers per tracked infohash. */
  swarms(): Array<{ infoHash: string; complete: number; incomplete: number }> {
    return Object.entries(this.#server.torrents).map(([infoHash, swarm]) => ({
      infoHash,
      complete: swarm.complete,
      incomplete: swarm.incomplete,
    }))
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}
