import type { Torrent } from 'webtorrent'
import TorrentClass from 'webtorrent/lib/torrent.js'
import { withPieceStore } from './piece-store.ts'

/**
 * webtorrent keeps requesting blocks at whatever rate its peers deliver, and hands each verified piece to
 * its store, which writes one piece at a time: when the disk is slower than the network, the pieces
 * waiting for their write pile up in memory, with nothing to stop them but the end of the download. A
 * 2 GiB deploy from one seeder on loopback (bench:agent, a machine whose page cache took about 3 s per
 * GiB of new pages) had up to 319 MB of verified pieces waiting, and the agent's peak (its RSS and its
 * swarm process's) was 456-600 MB against a 200 MB target. A host with a slow or throttled disk on a fast
 * network meets the same.
 *
 * So a downloading torrent asks for no new block while more than `maxBytes` of its verified pieces wait
 * for the store; each finished write re-plans the requests (webtorrent does after every write), and the
 * download goes on at the disk's pace. Blocks already asked for still arrive: the overshoot is at most a
 * request pipeline per peer (src/swarm/request-pipeline.ts: a block plus 0.1 s of its rate). A disk that
 * keeps up never reaches the limit, so a fleet rollout, whose hosts each take a few MB/s, is unchanged.
 */
let patched = false

/** Per downloading torrent: bytes handed to the store and not yet written, the limit, and time held. */
interface Backlog {
  pending: number
  maxBytes: number
  /** Since when `pending` has been over `maxBytes` (requests held), if it is. */
  overSince: number | undefined
  /** Milliseconds requests were held, not counting a hold still going on. */
  heldMs: number
}
const backlogs = new WeakMap<object, Backlog>()

export function limitWriteBacklog(torrent: Torrent, maxBytes: number): void {
  holdRequestsOverBacklog()
  const backlog: Backlog = { pending: 0, maxBytes, overSince: undefined, heldMs: 0 }
  backlogs.set(torrent, backlog)
  withPieceStore(torrent, (store) => {
    const put = store.put
    store.put = function (index, buf, cb) {
      // Counted now: by the time the write is done, releasePiecesOnceWritten may have detached the buffer.
      const bytes = buf.byteLength
      backlog.pending += bytes
      if (backlog.pending > backlog.maxBytes) backlog.overSince ??= Date.now()
      return put.call(this, index, buf, (err) => {
        backlog.pending -= bytes
        if (backlog.overSince !== undefined && backlog.pending <= backlog.maxBytes) {
          backlog.heldMs += Date.now() - backlog.overSince
          backlog.overSince = undefined
        }
        cb?.(err)
      })
    }
  })
}

/** Bytes of `torrent`'s verified pieces waiting for their write (0 for a torrent not under the limit). */
export function writeBacklog(torrent: Torrent): number {
  return backlogs.get(torrent)?.pending ?? 0
}

/**
 * Milliseconds `torrent` asked for no blocks because its pieces waited for the disk: the time the disk,
 * not the network, set the pace (0 for a torrent not under the limit).
 */
export function heldForDiskMs(torrent: Torrent): number {
  const backlog = backlogs.get(torrent)
  if (!backlog) return 0
  return backlog.heldMs + (backlog.overSince === undefined ? 0 : Date.now() - backlog.overSince)
}

/** Applied once, to the class: no new requests from any wire (peer or web seed) while over the limit. */
function holdRequestsOverBacklog(): void {
  if (patched) return
  patched = true
  const original = TorrentClass.prototype._updateWire
  TorrentClass.prototype._updateWire = function (this: object, wire: unknown) {
    const backlog = backlogs.get(this)
    if (backlog && backlog.pending > backlog.maxBytes) return
    return original.call(this, wire)
  }
}
