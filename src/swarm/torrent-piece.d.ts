// A piece being downloaded (webtorrent keeps one per missing piece), patched by src/swarm/piece-memory.ts.
declare module 'torrent-piece' {
  export default class Piece {
    static BLOCK_LENGTH: number
    constructor(length: number)
    length: number
    missing: number
    sources: unknown[] | null
    _chunks: number
    _buffered: number
    _buffer: Array<Uint8Array | undefined> | null
    _cancellations: number[] | null
    _flushed: boolean
    init(): boolean
    set(i: number, data: Uint8Array, source: unknown): boolean
    flush(): Uint8Array | null
  }
}
