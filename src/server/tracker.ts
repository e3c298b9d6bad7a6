import type { Server as TrackerServer } from 'bittorrent-tracker'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../log.ts'
import { FleetTrackerServer } from './tracker-peers.ts'

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
  readonly #log: Logger

  constructor(options: TrackerOptions) {
    this.#log = options.log
    this.#server = new FleetTrackerServer({
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
    const problem = action === 'announce' ? announceProblem(req.url ?? '') : undefined
    if (problem) {
      this.#log.debug({ problem }, 'announce refused')
      return void res.end(bencodeFailure(problem))
    }
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

const EVENTS = new Set(['started', 'stopped', 'completed', 'update', 'paused', ''])
const NUMERIC = ['port', 'uploaded', 'downloaded', 'left', 'numwant', 'compact']
const MAX_QUERY = 2048

/**
 * Checks what the library does not: query size, the event name, and that numeric fields are numbers.
 * info_hash, peer_id and port ranges are checked by bittorrent-tracker itself (BEP 3).
 */
export function announceProblem(url: string): string | undefined {
  const query = url.slice(url.indexOf('?') + 1)
  if (!url.includes('?')) return 'missing query'
  if (query.length > MAX_QUERY) return `query over ${MAX_QUERY} bytes`
  // info_hash, peer_id and key (BEP 7) may be raw bytes: only the fields checked here are decoded.
  const fields = new Map<string, string>()
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    const key = eq === -1 ? pair : pair.slice(0, eq)
    if (key !== 'event' && !NUMERIC.includes(key)) continue
    let value: string
    try {
      value = decodeURIComponent(eq === -1 ? '' : pair.slice(eq + 1))
    } catch {
      return `bad encoding in ${key}`
    }
    fields.set(key, value)
  }
  const event = fields.get('event')
  if (event !== undefined && !EVENTS.has(event)) return `unknown event ${JSON.stringify(event.slice(0, 20))}`
  for (const key of NUMERIC) {
    const value = fields.get(key)
    if (value !== undefined && !/^\d{1,20}$/.test(value)) return `${key} must be a non-negative integer`
  }
  if (!fields.has('port')) return 'missing port'
  return undefined
}

function bencodeFailure(reason: string): string {
  return `d14:failure reason${Buffer.byteLength(reason)}:${reason}e`
}
