import type { Torrent, Wire } from 'webtorrent'
import { askForEveryHave } from './redundant-haves.ts'

/**
 * Super-seeding (the idea of BEP 16) for the origin seeder, whose upload is the one scarce link of a
 * rollout: every host wants every piece, and only the origin has any at first. A plain seeder tells every
 * peer it has everything, so peers picking at random ask it for pieces another host is already fetching
 * or already has, and each such duplicate delays a piece nobody has yet. Measured with 12 hosts before
 * this: the origin sent 1.46 x the release to complete the first copy of every piece.
 *
 * Here the origin advertises to each peer only a few pieces at a time (HAVE messages after an empty
 * bitfield or BEP 6 have-none): the pieces the fewest peers have or are being offered. When the peer has
 * asked for every block of an offered piece, or announces having it from someone else, the next one is
 * offered; an offer left unasked for offerTimeoutMs is withdrawn and replaced (the peer may have the piece
 * from elsewhere, unannounced). Until every piece has gone out once, a piece is offered only if no peer
 * holds it or is being offered it: a peer that arrives when none is left gets no offer and takes its
 * first pieces from the hosts that got them. Without that rule, a fleet with more hosts than half the
 * pieces made the origin send each piece to several hosts at once (64 hosts, a 32-piece release: 2.4-3.8
 * copies of the release before every piece was out; docs/performance.md, eleventh session). After that the
 * origin keeps feeding whatever the swarm holds least, so a piece stuck at a slow host goes out again.
 * The peer's view stays valid BitTorrent (a peer that has a few pieces), so any client works with it.
 */
export interface SuperSeedOptions {
  /**
   * Offers per peer cover what it downloaded from the origin in this many milliseconds, and at least
   * two pieces: enough that its request pipeline never drains, few enough that the first copies of
   * all pieces go out in about the time the origin needs to send the release once.
   */
  windowMs: number
  /**
   * An offer the peer has not asked a block of for this long is withdrawn and replaced: the peer may have
   * got the piece elsewhere without announcing it, and would otherwise keep the slot forever.
   */
  offerTimeoutMs: number
  /**
   * Called once, when every piece has gone out at least once: some peer asked the origin for all of it,
   * or announced having it. `ms` counts from the first offer (0 if hosts announced every piece before any
   * was offered). From then on the hosts can finish without the origin; the time they take after it is
   * the swarm's relay tail (docs/performance.md).
   */
  onEveryPieceOut?: (info: { ms: number }) => void
}

export function superSeed(torrent: SeedTorrent, options: SuperSeedOptions): void {
  /** Per piece: peers that have it, are being offered it, or asked for all of it and will have it soon. */
  let held: Uint32Array | undefined
  const counts = () => (held ??= new Uint32Array(torrent.pieces.length))
  const lengthOf = (index: number) => (index === torrent.pieces.length - 1 ? torrent.lastPieceLength : torrent.pieceLength)
  let firstOfferAt = 0
  /** Pieces that went out at least once (asked for in full, or announced by a peer), and how many. */
  let out: Uint8Array | undefined
  let outCount = 0
  const everyPieceOut = () => outCount === torrent.pieces.length
  /** Each connected peer's offerMore: peers left without offers in the first pass wait for these. */
  const offerers = new Set<() => void>()
  const offerToAll = () => {
    for (const offerMore of offerers) offerMore()
  }
  const wentOut = (index: number) => {
    out ??= new Uint8Array(torrent.pieces.length)
    if (out[index]) return
    out[index] = 1
    outCount++
    if (!everyPieceOut()) return
    options.onEveryPieceOut?.({ ms: firstOfferAt ? Date.now() - firstOfferAt : 0 })
    offerToAll()
  }
  /** One peer fewer holds or is offered the piece; in the first pass, a piece nobody has is free again. */
  let offerQueued = false
  const release = (index: number) => {
    const c = counts()
    c[index]!--
    if (c[index]! > 0 || everyPieceOut() || offerQueued) return
    offerQueued = true
    queueMicrotask(() => {
      offerQueued = false
      offerToAll()
    })
  }

  torrent.on('wire', (wire: SeedWire) => {
    // The torrent's own web seed (its url-list) is a wire too, holding every piece: not a peer to feed.
    if (wire.type === 'webSeed') return
    // Hosts skip HAVEs for pieces a peer has shown; the origin shows a few and must hear about the rest.
    askForEveryHave(wire)
    /** Offered piece -> when it was offered, and the bytes of it the peer asked for, by block offset. */
    const offers = new Map<number, { at: number; asked: Map<number, number> }>()
    /** Offers withdrawn unasked: not offered to this peer again (it was told about them once). */
    const withdrawn = new Set<number>()
    /** Offered pieces the peer asked for in full: counted as held until it announces them. */
    const delivering = new Set<number>()
    const peerHas = new Set<number>()
    const have = wire.have.bind(wire)
    const haveNone = wire.haveNone.bind(wire)
    const bitfield = wire.bitfield.bind(wire)
    let started = false

    const offerMore = () => {
      const window = Math.max(2, Math.ceil((wire.uploadSpeed() * options.windowMs) / 1000 / torrent.pieceLength))
      const firstPass = !everyPieceOut()
      while (offers.size < window) {
        const index = leastHeld(counts(), (i) => !peerHas.has(i) && !offers.has(i) && !delivering.has(i) && !withdrawn.has(i))
        // In the first pass only a piece nobody holds or is offered; the least held one is such a piece if any is.
        if (index < 0 || (firstPass && counts()[index]! > 0)) return
        offers.set(index, { at: Date.now(), asked: new Map() })
        firstOfferAt ||= Date.now()
        counts()[index]!++
        have(index)
      }
    }
    // webtorrent sends the seeder's state once the handshake is done: an empty one instead, then offers.
    const start = () => {
      if (started) return
      started = true
      offerers.add(offerMore)
      if (wire.hasFast) haveNone()
      else bitfield(new Uint8Array(Math.ceil(torrent.pieces.length / 8)))
      offerMore()
    }
    wire.haveAll = start
    wire.bitfield = start

    const expireOffers = () => {
      const before = Date.now() - options.offerTimeoutMs
      for (const [index, { at, asked }] of offers) {
        if (asked.size > 0 || at > before) continue
        offers.delete(index)
        withdrawn.add(index)
        release(index)
      }
      if (started) offerMore()
    }
    const expiry = setInterval(expireOffers, Math.max(10, options.offerTimeoutMs / 2))
    expiry.unref()

    const peerGot = (index: number) => {
      if (index < 0 || index >= torrent.pieces.length || peerHas.has(index)) return
      peerHas.add(index)
      // Already counted while offered or delivering; counted now otherwise (it came from another peer).
      if (!offers.delete(index) && !delivering.delete(index)) counts()[index]!++
      wentOut(index)
    }
    wire.on('have', (index: number) => {
      peerGot(index)
      if (started) offerMore()
    })
    /** The peer's whole state at once: a bitfield, or BEP 6's have-all. */
    const peerHolds = (has: (index: number) => boolean) => {
      for (let i = 0; i < torrent.pieces.length; i++) if (has(i)) peerGot(i)
      if (started) offerMore()
    }
    wire.on('bitfield', (pieces: { get(index: number): boolean }) => peerHolds((i) => pieces.get(i)))
    // A complete peer says so with have-all instead of a bitfield (webtorrent does: a host that finished,
    // connecting again). Taken for a peer with nothing, it was offered pieces it never asks for, and until
    // every piece had gone out those pieces went to nobody else for the offer time-out.
    wire.on('have-all', () => peerHolds(() => true))
    wire.on('request', (index: number, offset: number, length: number) => {
      const asked = offers.get(index)?.asked
      if (!asked) return
      asked.set(offset, length)
      let bytes = 0
      for (const n of asked.values()) bytes += n
      if (bytes < lengthOf(index)) return
      offers.delete(index)
      delivering.add(index)
      wentOut(index)
      offerMore()
    })
    wire.once('close', () => {
      clearInterval(expiry)
      offerers.delete(offerMore)
      for (const index of offers.keys()) release(index)
      for (const index of delivering) release(index)
      for (const index of peerHas) release(index)
    })
  })
}

/**
 * Index of the least held piece passing `allowed`, the first of equally held ones; -1 when none passes.
 * First, not random: the pieces then enter the swarm front to back, the order in which hosts look for
 * them (src/swarm/picker.ts) so that they can extract the tarball while it arrives.
 */
export function leastHeld(held: ArrayLike<number>, allowed: (index: number) => boolean): number {
  let min = Infinity
  let chosen = -1
  for (let i = 0; i < held.length; i++) {
    const count = held[i]!
    if (count >= min || !allowed(i)) continue
    min = count
    chosen = i
  }
  return chosen
}

interface SeedTorrent extends Torrent {
  pieces: unknown[]
  pieceLength: number
  lastPieceLength: number
}

interface SeedWire extends Wire {
  hasFast: boolean
  have(index: number): void
  uploadSpeed(): number
  haveAll(): void
  haveNone(): void
  bitfield(bitfield: unknown): void
}
