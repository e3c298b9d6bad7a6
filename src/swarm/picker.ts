import RarityMap from 'webtorrent/lib/rarity-map.js'

/**
 * Three changes to webtorrent's rarest-first picker (RarityMap.getRarestPiece), applied once to the class
 * when the swarm module loads. The first two keep "rarest first" and change which piece wins and how much
 * work finding it costs; the third looks near the front of the file before anywhere else.
 *
 * 1. Between equally rare pieces, finish a started one first. webtorrent breaks ties between equally rare pieces at random, also for a
 *    wire whose pipeline has room for only a block or two: each request then starts another piece, so a
 *    host holds dozens of half-fetched pieces, completes (and announces with HAVE) few, and other hosts,
 *    seeing those pieces as still rare, fetch the same ones from the origin. Measured with 12 hosts: the
 *    origin had been asked for blocks of 99 of 128 pieces after 5 s but sent only 25 whole, and sent 2.9 x
 *    the release in all. Preferring a started piece that still has unrequested blocks (what libtorrent
 *    calls prefer-partial) completes pieces one after another and announces them early.
 * 2. Skip pieces that cannot be requested: verified ones, and ones whose blocks are all requested. When the
 *    rarest candidate cannot be requested, webtorrent marks it tried and scans every piece again:
 *    O(pieces x such pieces) per received block, profiled at over half the CPU of a download (128 MiB, 512
 *    pieces, for verified pieces) and at a third of the agents' CPU in the 24-host fleet (for requested ones).
 * 3. Look at the first IN_ORDER_WINDOW missing pieces first (rarest among them), and at the rest only when
 *    this peer has none of those to give. The tarball then arrives roughly front to back, so the agent
 *    extracts it while it downloads (src/agent/install.ts) instead of after: with rarest-first alone the
 *    first quarter of the file was complete only a second before the whole of it. The window keeps many
 *    pieces in play, so hosts still hold different pieces to trade; the origin offers pieces in order
 *    (src/swarm/super-seed.ts), so the window's pieces are the ones entering the swarm.
 */
let patched = false

export function patchRarestPicker(): void {
  if (patched) return
  patched = true
  const original = RarityMap.prototype.getRarestPiece
  RarityMap.prototype.getRarestPiece = function (this: RarityMapInstance, filter?: (index: number) => boolean): number {
    const torrent = this._torrent
    const have = torrent?.bitfield
    if (!torrent || !have) return original.call(this, filter)
    const wanted = (index: number) => !have.get(index) && (filter === undefined || filter(index))
    let first = this._firstMissing ?? 0
    while (first < this._pieces.length && have.get(first)) first++
    this._firstMissing = first
    return inOrderPiece(torrent.pieces, this._pieces, wanted, first, IN_ORDER_WINDOW)
  }
}

/** Missing pieces, from the first, among which a peer's rarest is taken before any other (see 3. above). */
export const IN_ORDER_WINDOW = 64

/**
 * The rarest requestable piece among the `window` pieces from `first` on (see rarestPiece), the first of
 * equally rare ones, else the rarest of all the pieces passing `wanted`. -1 when no piece passes. First
 * rather than random inside the window: from a single source (the origin alone, or one peer) the pieces
 * then come strictly in order instead of in any order within the source's offers, which let the verified
 * prefix, and the extraction behind it, fall up to the whole offer behind.
 */
export function inOrderPiece(pieces: ReadonlyArray<PieceInstance | null>, availability: readonly number[], wanted: (index: number) => boolean, first: number, window: number): number {
  const near = rarestPiece(pieces, availability, wanted, first, Math.min(availability.length, first + window), 'first')
  const piece = near >= 0 ? pieces[near] : undefined
  if (near >= 0 && (!piece?._buffer || hasUnrequestedBlocks(piece))) return near
  return rarestPiece(pieces, availability, wanted)
}

/**
 * Among the pieces passing `wanted` that still have a block nobody was asked for, the least available;
 * between equally rare ones, a started piece first, else one at random (as webtorrent does). Pieces whose
 * blocks are all requested already are skipped: webtorrent would pick one, fail to request it, mark it
 * tried and scan again, once per such piece. Only when no piece has a free block (the end of a download)
 * is the rarest of the rest returned, so webtorrent can still move a request off a much slower peer
 * (its "hotswap"). -1 when no piece passes `wanted`. Only indexes in [from, to) are looked at; `ties`
 * 'first' takes the lowest index among equally rare unstarted pieces instead of one at random.
 */
export function rarestPiece(pieces: ReadonlyArray<PieceInstance | null>, availability: readonly number[], wanted: (index: number) => boolean, from = 0, to = availability.length, ties: 'random' | 'first' = 'random'): number {
  let min = Infinity
  let candidates: number[] = []
  let started = -1
  let busyMin = Infinity
  let busy = -1
  for (let i = from; i < to; i++) {
    const count = availability[i]!
    const piece = pieces[i]
    const free = !piece?._buffer || hasUnrequestedBlocks(piece)
    if (!free) {
      if (count < busyMin && wanted(i)) {
        busyMin = count
        busy = i
      }
      continue
    }
    if (count > min || !wanted(i)) continue
    if (count < min) {
      min = count
      candidates = []
      started = -1
    }
    candidates.push(i)
    if (started < 0 && piece?._buffer) started = i
  }
  if (started >= 0) return started
  if (candidates.length > 0) return ties === 'first' ? candidates[0]! : candidates[Math.floor(Math.random() * candidates.length)]!
  return busy
}

function hasUnrequestedBlocks(piece: PieceInstance): boolean {
  return piece._reservations < piece._chunks || (piece._cancellations?.length ?? 0) > 0
}

/** The parts of webtorrent's RarityMap and torrent-piece's Piece read here (private fields, pinned version). */
interface RarityMapInstance {
  /** Ours: no piece before it was missing when last looked (a piece un-verified later is still found by the full scan). */
  _firstMissing?: number
  _torrent: { bitfield?: { get(index: number): boolean }; pieces: Array<PieceInstance | null> } | null
  _pieces: number[]
}

export interface PieceInstance {
  _buffer: unknown[] | null
  _reservations: number
  _chunks: number
  _cancellations: number[] | null
}
