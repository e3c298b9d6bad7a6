// webtorrent 3 ships no types and @types/webtorrent describes the 0.x API: only what rookery uses is declared.
declare module 'webtorrent' {
  import type { EventEmitter } from 'node:events'

  export interface WebTorrentOptions {
    dht?: boolean
    lsd?: boolean
    utPex?: boolean
    utp?: boolean
    natUpnp?: boolean
    natPmp?: boolean
    webSeeds?: boolean
    secure?: 0 | 1 | 2
    torrentPort?: number
    maxConns?: number
    tracker?: Record<string, unknown> | false
    downloadLimit?: number
    uploadLimit?: number
  }

  export interface AddOptions {
    path?: string
    announce?: string[]
    strategy?: 'rarest' | 'sequential'
    skipVerify?: boolean
    private?: boolean
    storeCacheSlots?: number
    maxWebConns?: number
    destroyStoreOnDestroy?: boolean
    /** Peers unchoked at once (default 10). */
    uploads?: number
  }

  export interface Wire extends EventEmitter {
    type: 'webrtc' | 'tcpIncoming' | 'tcpOutgoing' | 'utpIncoming' | 'utpOutgoing' | 'webSeed'
    remoteAddress?: string
    remotePort?: number
    /** Hex peer id, once the handshake is done. */
    peerId?: string
    /** Keys this side sends in its BEP 10 extended handshake (set before it is sent). */
    extendedHandshake: Record<string, unknown>
    /** The peer's extended handshake, once received. */
    peerExtendedHandshake?: Record<string, unknown>
    destroy(): void
    downloaded: number
    uploaded: number
  }

  export interface TrackerClient {
    update(opts?: Record<string, unknown>): void
  }

  export interface Torrent extends EventEmitter {
    infoHash: string
    name: string
    length: number
    downloaded: number
    uploaded: number
    received: number
    progress: number
    done: boolean
    ready: boolean
    destroyed: boolean
    numPeers: number
    wires: Wire[]
    /** Connects to a peer at "host:port" (webtorrent also takes wires and simple-peer objects). */
    addPeer(peer: string): boolean
    path: string
    discovery?: { tracker?: TrackerClient | null } | null
    destroy(opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): void
    addWebSeed(url: string): void
  }

  export default class WebTorrent extends EventEmitter {
    constructor(opts?: WebTorrentOptions)
    torrents: Torrent[]
    torrentPort: number
    /** Hex; sent in every handshake (src/swarm/refuse-self.ts compares it). */
    peerId: string
    listening: boolean
    destroyed: boolean
    add(torrentId: Buffer | Uint8Array | string | object, opts?: AddOptions, onTorrent?: (torrent: Torrent) => void): Torrent
    get(torrentId: string | Buffer): Promise<Torrent | null>
    remove(torrentId: string | Torrent, opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): Promise<void>
    destroy(cb?: (err?: Error | null) => void): void
    address(): { address: string; family: string; port: number } | null
  }
}

// The rarest-first piece picker, patched by src/swarm/picker.ts.
declare module 'webtorrent/lib/rarity-map.js' {
  export default class RarityMap {
    getRarestPiece(filter?: (index: number) => boolean): number
    recalculate(): void
  }
}

// The wire protocol under webtorrent; the tests use it as a bare peer.
declare module 'bittorrent-protocol' {
  import { Duplex } from 'node:stream'
  export default class Protocol extends Duplex {
    peerChoking: boolean
    /** Keys sent in this side's BEP 10 extended handshake; the peer's, once received. */
    extendedHandshake: Record<string, unknown>
    peerExtendedHandshake: Record<string, unknown>
    bitfield(bits: Uint8Array): void
    handshake(infoHash: string | Uint8Array, peerId: string | Uint8Array, extensions?: { dht?: boolean; fast?: boolean }): void
    interested(): void
    unchoke(): void
    haveNone(): void
    have(index: number): void
    request(index: number, offset: number, length: number, cb: (err: Error | null, block: Uint8Array) => void): void
    _message(id: number, numbers: number[], data: Uint8Array | null): void
    _write(data: Uint8Array, cb: (err: null) => void): void
  }
}

// The torrent class, whose request planning src/swarm/coalesce-updates.ts batches.
declare module 'webtorrent/lib/torrent.js' {
  export default class Torrent {
    _update(): void
    _updateWire(wire: unknown): unknown
    _updateWireInterest(wire: unknown): void
  }
}

// A peer connection, whose stream plumbing src/swarm/direct-pipes.ts simplifies.
declare module 'webtorrent/lib/peer.js' {
  export default class Peer {
    setThrottlePipes(): void
  }
}

// The tracker client's surface patched by src/swarm/tracker-errors.ts (merged with the server's
// declaration of the same module in src/server/vendor-modules.d.ts).
declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events'
  export class Client extends EventEmitter {
    constructor(opts: { infoHash: string; peerId: string; announce: string[]; port: number })
    start(opts?: unknown): void
    update(opts?: unknown): void
    destroy(cb?: () => void): void
    _trackers: Array<{ announceUrl?: string }>
    _announce(opts: unknown): void
    scrape(opts?: unknown): void
  }
}
