// bittorrent-tracker ships no types: only the server surface rookery uses is declared.
declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events'
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export interface TrackerServerOptions {
    http?: boolean
    udp?: boolean
    ws?: boolean
    stats?: boolean
    interval?: number
    trustProxy?: boolean
    peersCacheLength?: number
    peersCacheTtl?: number
    filter?: (infoHash: string, params: Record<string, unknown>, cb: (err?: Error | null) => void) => void
  }

  /** A peer as the library's swarm keeps it (HTTP peers: `type` 'http', id "ip:port"). */
  export interface TrackerPeer {
    type: string
    complete: boolean
    peerId: string
    ip: string
    port: number
  }

  /** The peer store: an `lru` instance. */
  export interface PeerCache {
    length: number
    readonly keys: string[]
    cache: Record<string, unknown>
    peek(key: string): TrackerPeer | undefined
    set(key: string, value: TrackerPeer): TrackerPeer
    remove(key: string): TrackerPeer | undefined
    clear(): void
  }

  /** The library's swarm ("the default implementation of an interface" a server may replace). */
  export class Swarm {
    constructor(infoHash: string, server: Server)
    infoHash: string
    complete: number
    incomplete: number
    peers: PeerCache
    _getPeers(numwant: number, ownPeerId: string, isWebRTC: boolean): TrackerPeer[]
  }

  /** What `_onAnnounce` answers; `peers` are objects unless the request asked for compact = 0 or 1. */
  export interface AnnounceResponse {
    complete: number
    incomplete: number
    peers: TrackerPeer[] | Uint8Array
    peers6?: Uint8Array
    [key: string]: unknown
  }

  export class Server extends EventEmitter {
    constructor(opts?: TrackerServerOptions)
    static Swarm: typeof Swarm
    torrents: Record<string, Swarm>
    createSwarm(infoHash: string, cb: (err: Error | null, swarm: Swarm) => void): void
    _onAnnounce(params: { compact?: number; [key: string]: unknown }, cb: (err: Error | null, response?: AnnounceResponse) => void): void
    onHttpRequest(req: IncomingMessage, res: ServerResponse, opts?: { action?: 'announce' | 'scrape'; trustProxy?: boolean }): void
    close(cb?: () => void): void
  }
}
