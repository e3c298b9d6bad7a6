import type { Torrent } from 'webtorrent'

/** The part of webtorrent's chunk store (`torrent.store`) that src/swarm wraps. */
export interface PieceStore {
  put(index: number, buf: Uint8Array, cb?: (err?: Error | null) => void): void
  get(index: number, opts: unknown, cb?: unknown): void
}

/**
 * Runs `wrap` with a downloading torrent's store: at once if the torrent has one, else when its metadata
 * arrives (webtorrent makes the store then). For wrappers of the store's methods.
 */
export function withPieceStore(torrent: Torrent, wrap: (store: PieceStore) => void): void {
  const store = () => (torrent as unknown as { store?: PieceStore | null }).store
  const run = () => {
    const s = store()
    if (s) wrap(s)
  }
  if (store()) run()
  else torrent.once('metadata', run)
}
