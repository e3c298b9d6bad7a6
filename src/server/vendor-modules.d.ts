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

  export interface Swarm {
    complete: number
    incomplete: number
    peers: { length: number; keys: string[] }
  }

  export class Server extends EventEmitter {
    constructor(opts?: TrackerServerOptions)
    torrents: Record<string, Swarm>
    onHttpRequest(req: IncomingMessage, res: ServerResponse, opts?: { action?: 'announce' | 'scrape'; trustProxy?: boolean }): void
    close(cb?: () => void): void
  }
}
