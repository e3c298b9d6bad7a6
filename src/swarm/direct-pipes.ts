import Peer from 'webtorrent/lib/peer.js'

/**
 * webtorrent connects each peer's socket and wire protocol through four extra streams per direction pair:
 * a rate-limiter (speed-limiter) each way, and a transform each way that only counts bytes. Every chunk
 * of every block passes through them (each an async step), even when no rate limit is set. Without a
 * limit, this pipes socket and wire directly and counts bytes with `data` listeners instead: the same
 * events ('download', 'upload' on the peer, which feed the torrent's byte counts), fewer steps per chunk.
 * With a limit (the server's origin_upload_limit) webtorrent's own pipes stay. The peer already destroys
 * both ends when either ends, closes or fails, which the direct pipes rely on.
 * Applied once, to the class, when the swarm module loads.
 */
let patched = false

export function pipePeersDirectly(): void {
  if (patched) return
  patched = true
  const original = Peer.prototype.setThrottlePipes
  Peer.prototype.setThrottlePipes = function (this: PeerInstance) {
    const { down, up } = this.throttleGroups
    if (down.getEnabled() || up.getEnabled()) return original.call(this)
    this.conn.on('data', (chunk: Uint8Array) => {
      if (!this.destroyed) this.emit('download', chunk.length)
    })
    this.wire.on('data', (chunk: Uint8Array) => {
      if (!this.destroyed) this.emit('upload', chunk.length)
    })
    this.conn.pipe(this.wire)
    this.wire.pipe(this.conn)
  }
}

interface Pipeable {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown
  pipe(destination: unknown): unknown
}

interface PeerInstance {
  destroyed: boolean
  conn: Pipeable
  wire: Pipeable
  throttleGroups: { down: { getEnabled(): boolean }; up: { getEnabled(): boolean } }
  emit(event: string, ...args: unknown[]): boolean
}
