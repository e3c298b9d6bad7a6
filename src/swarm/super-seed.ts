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

/** What a piece is for one peer, to the origin: one of these, or 0 (a piece that may be offered to it). */
const HAS = 1 // the peer announced it
const OFFERED = 2 // offered and not yet asked for in full
const DELIVERING = 4 // asked for in full: counted as held until the peer announces it
const WITHDRAWN = 8 // offered, never asked for, withdrawn: not offered to this peer again

/*
 * Cost per event, for an origin that thousands of hosts connect to (npm run bench:origin): a HAVE or a
 * request costs O(1) unless it frees room for an offer, and only an offer made scans the pieces (a typed
 * array, no callbacks). Before every piece is out a peer is offered only pieces nobody holds, so with none
 * left (counted in `free`) the search is skipped; after that a peer's offerable pieces only ever shrink,
 * so a peer with none left is not searched again. A freed piece wakes every peer, each in O(1) when it
 * finds nothing free.
 */
export function superSeed(torrent: SeedTorrent, options: SuperSeedOptions): void {
  /** Per piece: peers that have it, are being offered it, or asked for all of it and will have it soon. */
  let held: Uint32Array | undefined
  /** Pieces nobody holds (held 0): the only ones offered before every piece is out. */
  let free = 0
  // Made on first use: the torrent's pieces are known once its metadata is loaded, after superSeed is called.
  const counts = () => {
    if (!held) {
      held = new Uint32Array(torrent.pieces.length)
      free = held.length
    }
    return held
  }
  const hold = (index: number) => {
    if (counts()[index]!++ === 0) free--
  }
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
    if (--c[index]! === 0) free++
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
    /** Per piece, for this peer: HAS, OFFERED, DELIVERING, WITHDRAWN or 0. Made on first use, as `held`. */
    let state: Uint8Array | undefined
    const states = () => (state ??= new Uint8Array(torrent.pieces.length))
    /** Offered piece -> when it was offered, and the bytes of it the peer asked for, by block offset. */
    const offers = new Map<number, { at: number; asked: Map<number, number> }>()
    /** Set once every piece is out and nothing is left to offer this peer: it never will be again. */
    let exhausted = false
    const have = wire.have.bind(wire)
    const haveNone = wire.haveNone.bind(wire)
    const bitfield = wire.bitfield.bind(wire)
    let started = false

    const offerMore = () => {
      let window = 0 // computed only if there may be something to offer: the rate costs more than the checks
      const counted = counts()
      for (;;) {
        const firstPass = !everyPieceOut()
        if (exhausted || (firstPass && free === 0)) return
        window ||= Math.max(2, Math.ceil((wire.uploadSpeed() * options.windowMs) / 1000 / torrent.pieceLength))
        if (offers.size >= window) return
        const index = leastHeld(counted, states())
        if (index < 0) {
          exhausted = !firstPass
          return
        }
        // In the first pass only a piece nobody holds or is offered; the least held one is such a piece if any is.
        if (firstPass && counted[index]! > 0) return
        offers.set(index, { at: Date.now(), asked: new Map() })
        states()[index] = OFFERED
        firstOfferAt ||= Date.now()
        hold(index)
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
        states()[index] = WITHDRAWN
        release(index)
      }
      if (started) offerMore()
    }
    const expiry = setInterval(expireOffers, Math.max(10, options.offerTimeoutMs / 2))
    expiry.unref()

    const peerGot = (index: number) => {
      if (index < 0 || index >= torrent.pieces.length) return
      const peerState = states()
      const was = peerState[index]!
      if (was === HAS) return
      // Already counted while offered or delivering; counted now otherwise (it came from another peer).
      if (was === OFFERED) offers.delete(index)
      else if (was !== DELIVERING) hold(index)
      peerState[index] = HAS
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
      states()[index] = DELIVERING
      wentOut(index)
      offerMore()
    })
    wire.once('close', () => {
      clearInterval(expiry)
      offerers.delete(offerMore)
      // Every piece this peer held, was offered or was being sent counted once in `held`.
      if (state) for (let i = 0; i < state.length; i++) if (state[i] === HAS || state[i] === OFFERED || state[i] === DELIVERING) release(i)
    })
  })
}

/**
 * Index of the least held piece whose `excluded` entry is 0, the first of equally held ones; -1 when
 * none is. First, not random: the pieces then enter the swarm front to back, the order in which hosts
 * look for them (src/swarm/picker.ts) so that they can extract the tarball while it arrives.
 */
export function leastHeld(held: ArrayLike<number>, excluded: ArrayLike<number>): number {
  let min = Infinity
  let chosen = -1
  for (let i = 0; i < held.length; i++) {
    const count = held[i]!
    if (count >= min || excluded[i] !== 0) continue
    if (count === 0) return i // nothing is held less
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
