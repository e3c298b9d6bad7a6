import type { Torrent, Wire } from 'webtorrent'

/**
 * webtorrent discards a piece that fails its SHA-1 check and asks again, but never stops asking the peer
 * that sent it: one peer with a bad disk or a tampered copy made a host pull 500 MB for a 4 MiB release.
 * This remembers which peers sent blocks of each piece; when a piece that one peer sent alone fails (the
 * usual case: webtorrent asks one peer for all blocks of a piece), that peer gets a strike, and a peer
 * with `maxStrikes` is disconnected and refused from then on. A piece mixed from several peers blames
 * nobody, so a good peer is not dropped for a bad one's blocks. Peers are told apart by
 * peer id, not address: several peers may share an address, and one peer may hold two connections to
 * us (one it opened, one we did), which count as one sender and are dropped together.
 */
export function dropCorruptPeers(torrent: Torrent, options: { maxStrikes: number; onDrop: (peer: string, strikes: number) => void }): void {
  /** Piece -> the peers that sent blocks of it since it was last checked. */
  const senders = new Map<number, Set<string>>()
  const strikes = new Map<string, number>()
  const dropped = new Set<string>()
  const idOf = (wire: Wire) => wire.peerId ?? `${wire.remoteAddress}:${wire.remotePort}`

  torrent.on('wire', (wire: Wire) => {
    if (dropped.has(idOf(wire))) return wire.destroy()
    wire.on('piece', (index: number) => {
      let set = senders.get(index)
      if (!set) senders.set(index, (set = new Set()))
      set.add(idOf(wire))
    })
  })
  torrent.on('verified', (index: number) => senders.delete(index))
  torrent.on('warning', (err: Error) => {
    const failed = /^Piece (\d+) failed verification/.exec(err.message)
    if (!failed) return
    const index = Number(failed[1])
    const sent = senders.get(index)
    senders.delete(index)
    if (sent?.size !== 1) return
    const id = [...sent][0]!
    const count = (strikes.get(id) ?? 0) + 1
    strikes.set(id, count)
    if (count >= options.maxStrikes && !dropped.has(id)) {
      dropped.add(id)
      for (const wire of torrent.wires.filter((w) => idOf(w) === id)) wire.destroy()
      options.onDrop(id, count)
    }
  })
}
