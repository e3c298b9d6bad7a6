import type { Torrent } from 'webtorrent'

/**
 * Follows the verified start of a torrent's file, for a reader that consumes it front to back while the
 * rest still arrives (the agent's extraction). webtorrent emits 'verified' for a piece once its store has
 * written it, so the leading run of verified pieces is on disk and final. Returns `onDisk(bytes)`: it
 * resolves once the first `bytes` bytes are there, and rejects with `done`'s error if the download fails
 * first. Single-file torrents only (a release is one tarball).
 */
export function verifiedPrefix(torrent: Torrent, done: Promise<void>): (bytes: number) => Promise<void> {
  const t = torrent as PrefixTorrent
  let leading = 0 // pieces 0 .. leading-1 are verified
  let failure: Error | undefined
  let waiters: Array<{ bytes: number; resolve: () => void; reject: (err: Error) => void }> = []

  const bytesOnDisk = () => Math.min(t.length, leading * t.pieceLength)
  const advance = () => {
    const have = t.bitfield
    if (!have || !t.pieces) return // no metadata yet
    while (leading < t.pieces.length && have.get(leading)) leading++
    const onDisk = bytesOnDisk()
    const ready = waiters.filter((w) => w.bytes <= onDisk)
    if (ready.length === 0) return
    waiters = waiters.filter((w) => w.bytes > onDisk)
    for (const w of ready) w.resolve()
  }
  t.on('verified', advance)
  t.on('ready', advance)
  done.then(advance, (err: Error) => {
    failure = err
    for (const w of waiters) w.reject(err)
    waiters = []
  })

  return (bytes) => {
    advance()
    if (t.pieces && bytesOnDisk() >= bytes) return Promise.resolve()
    if (failure) return Promise.reject(failure)
    return new Promise((resolve, reject) => waiters.push({ bytes, resolve, reject }))
  }
}

/** The parts of webtorrent's Torrent read here (set once its metadata is known). */
interface PrefixTorrent extends Torrent {
  bitfield?: { get(index: number): boolean }
  pieces?: unknown[]
  pieceLength: number
  length: number
}
