// Minimal types for the two webtorrent packages that ship none; only what src/release uses.

declare module 'create-torrent' {
  interface CreateTorrentOptions {
    name?: string
    creationDate?: Date
    createdBy?: string
    comment?: string
    private?: boolean
    pieceLength?: number
    announceList?: string[][]
    urlList?: string[]
  }
  /** Hashes `input` (a file path, a buffer) and calls back with the bencoded .torrent. */
  function createTorrent(
    input: string | Uint8Array,
    opts: CreateTorrentOptions,
    cb: (err: Error | null, torrent: Uint8Array) => void,
  ): void
  export default createTorrent
}

declare module 'parse-torrent' {
  interface ParsedTorrent {
    infoHash: string
    name?: string
    length?: number
    pieceLength?: number
    pieces?: string[]
    announce?: string[]
    urlList?: string[]
    private?: boolean
    /** The decoded info dictionary; absent when the input was a bare infohash or magnet link. */
    info?: { files?: unknown; length?: unknown }
  }
  /** Parses a .torrent buffer, a magnet URI or an infohash. A 20-byte buffer is taken as an infohash. */
  function parseTorrent(torrentId: Uint8Array | string): Promise<ParsedTorrent>
  export default parseTorrent
}
