import RarityMap from 'webtorrent/lib/rarity-map.js'
import Torrent from 'webtorrent/lib/torrent.js'

/**
 * Work webtorrent redoes for a torrent it already has whole, on every peer that connects and every HAVE
 * a peer sends. Negligible for a host with a few dozen peers; not for the origin, which every host of a
 * rollout may connect to and which hears every host's HAVE for every piece (npm run bench:origin; with
 * 1,600 hosts and 1,021 pieces its CPU per joining host was 2.5 times that with 100 hosts):
 * - the rarity map (how many peers have each piece, for picking what to download) recounts every piece of
 *   every connected peer when a peer connects or sends a bitfield: peers x pieces per connection;
 * - "am I interested in this peer" walks all pieces looking for one it lacks, on each HAVE.
 * A complete torrent picks nothing and wants nothing, so both are skipped while `done` holds: rookery
 * selects every piece, so `done` means every piece is verified. The rarity map still counts HAVEs (O(1))
 * and leaving peers; its counts are only read by the picker, which a complete torrent does not run. A
 * torrent that stops being done (webtorrent allows unmarking pieces; rookery does not) is recounted in
 * full at its next connection or bitfield.
 * Applied once, to the classes, when the swarm module loads.
 */
let patched = false

export function skipWorkForCompleteTorrents(): void {
  if (patched) return
  patched = true
  const recalculate = RarityMap.prototype.recalculate
  RarityMap.prototype.recalculate = function (this: RarityMapInstance) {
    if (this._torrent?.done) return
    recalculate.call(this)
  }
  const updateWireInterest = Torrent.prototype._updateWireInterest
  Torrent.prototype._updateWireInterest = function (this: TorrentInstance, wire: WireInstance) {
    if (!this.done) return updateWireInterest.call(this, wire)
    wire.uninterested()
  }
}

interface RarityMapInstance {
  _torrent: { done: boolean } | null
}

interface TorrentInstance {
  done: boolean
}

interface WireInstance {
  uninterested(): void
}
