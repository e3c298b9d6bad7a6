import Torrent from 'webtorrent/lib/torrent.js'

/**
 * Makes webtorrent refuse connections to itself again. Its peer code (lib/peer.js, onHandshake) drops a
 * connection whose handshake carries our own peer id by comparing it with `torrent.peerId`, a property
 * webtorrent 3's Torrent does not have, so the check never matches. The server's origin seeder, which
 * the tracker hands its own address like any peer's, then connected to itself twice (out and in), and
 * its super-seeding (src/swarm/super-seed.ts) offered its first pieces to those two wires, which, being
 * the seeder itself, never asked for them: measured with 8 hosts, the first four pieces reached no host
 * until every other piece was in, and each host then fetched them in the tail of its download.
 * Reading the peer id from the client (set at construction, never changed) restores the check, before
 * webtorrent emits 'wire', so nothing else sees such a connection.
 */
let patched = false

export function refuseSelfConnections(): void {
  if (patched || 'peerId' in Torrent.prototype) return
  patched = true
  Object.defineProperty(Torrent.prototype, 'peerId', {
    configurable: true,
    get(this: { client?: { peerId?: string } }) {
      return this.client?.peerId
    },
    // Should a later webtorrent assign its own, it becomes the instance's property.
    set(this: object, value: unknown) {
      Object.defineProperty(this, 'peerId', { value, writable: true, configurable: true, enumerable: true })
    },
  })
}
