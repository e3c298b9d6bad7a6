import type { Torrent, Wire } from 'webtorrent'

/**
 * A host announces each piece it completes (HAVE) to every peer, as webtorrent does, also to peers that
 * already have that piece. In a rollout most peers have most pieces by the time a host announces them, so
 * most HAVEs tell a peer nothing: pieces x peers tiny messages per host, each a write, a segment through
 * the network and a wake-up and parse at the receiver. Skipping them is libtorrent's
 * `send_redundant_have = false`: a peer that has a piece never asks for it, so its view of this host
 * only matters for pieces it lacks. 64 hosts at 10 Mbit/s with an 8 MiB release (128 pieces), in the
 * fleet bed: the swarm processes' write calls 468,000-481,000 -> 282,000-314,000 and the clients' CPU
 * 126-136 -> 106-113 s (four runs against two; docs/performance.md, thirteenth session). No change shows
 * at 8 or 24 hosts.
 *
 * The exception is the origin (src/swarm/super-seed.ts): it shows each host only the pieces it offers it,
 * and needs to hear when the host got an offered piece from someone else, which that host's HAVE tells
 * it. It says so with a key in its BEP 10 extended handshake, and gets every HAVE.
 */

/** The extended handshake key of a peer that wants every HAVE, also for pieces it has shown. */
export const WANTS_EVERY_HAVE = 'rookery_every_have'

/** For the origin's wires: asks the peer for every HAVE. Call from the torrent's 'wire' event. */
export function askForEveryHave(wire: Wire): void {
  wire.extendedHandshake[WANTS_EVERY_HAVE] = 1
}

/** Wires of a downloading torrent whose peer asked for every HAVE: the origin's. */
const askedForEvery = new WeakSet<object>()

/** Whether this peer asked for every HAVE, i.e. is a super-seeding origin (for downloads under skipRedundantHaves). */
export function wantsEveryHave(wire: Wire): boolean {
  return askedForEvery.has(wire)
}

/** For a downloading torrent: no HAVE to a peer for a piece it has, unless it asked for every HAVE. */
export function skipRedundantHaves(torrent: Torrent): void {
  torrent.on('wire', (wire: HaveWire) => {
    if (wire.type === 'webSeed') return
    wire.on('extended', (ext: string, info: Record<string, unknown> | undefined) => {
      if (ext !== 'handshake') return
      if (info?.[WANTS_EVERY_HAVE] === 1) askedForEvery.add(wire)
      else askedForEvery.delete(wire)
    })
    const have = wire.have
    wire.have = function (index: number) {
      if (wire.peerPieces.get(index) && !askedForEvery.has(wire)) return
      have.call(wire, index)
    }
  })
}

interface HaveWire extends Wire {
  have(index: number): void
  peerPieces: { get(index: number): boolean }
  on(event: 'extended', listener: (ext: string, info: Record<string, unknown> | undefined) => void): this
}
