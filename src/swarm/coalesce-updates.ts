import Torrent from 'webtorrent/lib/torrent.js'

/**
 * webtorrent re-plans the requests of every peer connection (`_update`: `_updateWire` for each wire) on
 * each event that may change them: every block received, every HAVE from any peer, every unchoke. In a
 * swarm where 23 peers announce each piece they finish, that is thousands of full re-plans per second
 * per host, most of them in the same burst of socket data. This runs one re-plan per turn of the event
 * loop however many events asked for it: the same decisions, made once with all the news of that turn.
 * (webtorrent itself defers `_update` to an idle callback in browsers, so callers expect it to be async.)
 * A complete torrent has nothing to ask for and is not re-planned at all: at the origin, which every host
 * may connect to, each turn's re-plan walked every host's connection (src/swarm/complete-torrent.ts).
 * Applied once, to the class, when the swarm module loads.
 */
let patched = false

export function coalesceTorrentUpdates(): void {
  if (patched) return
  patched = true
  const scheduled = new WeakSet<object>()
  Torrent.prototype._update = function (this: TorrentInstance) {
    if (scheduled.has(this)) return
    scheduled.add(this)
    setImmediate(() => {
      scheduled.delete(this)
      if (!this.destroyed && !this.done) this._updateWireWrapper()
    })
  }
}

interface TorrentInstance {
  destroyed: boolean
  done: boolean
  _updateWireWrapper(): void
}
