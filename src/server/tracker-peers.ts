import { Server as TrackerServer, type AnnounceResponse, type TrackerPeer } from 'bittorrent-tracker'
import ipaddr from 'ipaddr.js'

/**
 * bittorrent-tracker's server, with the two costs of an announce that its profile showed under load
 * (`npm run bench:tracker`, 1000 peers, numwant 50) taken out; the answers are the same:
 * - A compact answer (BEP 23, what every client asks for) turned each listed peer from an "ip:port" string
 *   into bytes again on every announce (a regex and ipaddr.js per peer: about a third of the server's CPU).
 *   Here each peer's bytes are made once and kept with the peer.
 * - Picking the peers copied every key of the swarm (`Object.keys` of the peer cache: another tenth).
 *   Here the list of keys is kept until a peer joins or leaves.
 * Both rely on the library's documented way to replace swarms (`Server.Swarm`, `createSwarm`) and on its
 * answer holding peer objects when `compact` is neither 0 nor 1 (as for its WebSocket clients).
 */
export class FleetTrackerServer extends TrackerServer {
  override createSwarm(infoHash: string, cb: (err: Error | null, swarm: InstanceType<typeof TrackerServer.Swarm>) => void): void {
    // As the library's createSwarm, with the swarm below.
    process.nextTick(() => {
      const swarm = (this.torrents[infoHash] = new KeyListSwarm(infoHash, this))
      cb(null, swarm)
    })
  }

  override _onAnnounce(params: { compact?: number; [key: string]: unknown }, cb: (err: Error | null, response?: AnnounceResponse) => void): void {
    if (params.compact !== 1) return super._onAnnounce(params, cb)
    // Neither 0 nor 1: the library leaves the peers as objects. The same params object goes on (the
    // library completes it, e.g. its event, and reads it again after answering).
    params.compact = -1
    super._onAnnounce(params, (err, response) => {
      params.compact = 1
      if (err || !response) return cb(err ?? new Error('the tracker gave no answer'))
      const { v4, v6 } = compactPeers(response.peers as TrackerPeer[])
      cb(null, { ...response, peers: v4, peers6: v6 })
    })
  }
}

/** The library's swarm, keeping the list of its peers' keys between announces. */
class KeyListSwarm extends TrackerServer.Swarm {
  #keys: string[] | undefined

  constructor(infoHash: string, server: TrackerServer) {
    super(infoHash, server)
    // Every change of membership goes through set (a new key), remove (stopped, evicted, expired) or
    // clear; the cache calls its own methods through `this`, so these wrappers see its evictions too.
    const peers = this.peers
    const set = peers.set.bind(peers)
    const remove = peers.remove.bind(peers)
    const clear = peers.clear.bind(peers)
    peers.set = (key, value) => {
      if (!Object.hasOwn(peers.cache, key)) this.#keys = undefined
      return set(key, value)
    }
    peers.remove = (key) => {
      this.#keys = undefined
      return remove(key)
    }
    peers.clear = () => {
      this.#keys = undefined
      clear()
    }
  }

  /** As the library's: up to `numwant` peers in random order, of the asker's kind (HTTP or WebSocket). */
  override _getPeers(numwant: number, ownPeerId: string, isWebRTC: boolean): TrackerPeer[] {
    const keys = (this.#keys ??= this.peers.keys)
    const picked: TrackerPeer[] = []
    // A partial Fisher-Yates shuffle of the kept list: its order does not matter between announces.
    for (let i = 0; i < keys.length && picked.length < numwant; i++) {
      const j = i + Math.floor(Math.random() * (keys.length - i))
      const key = keys[j]!
      keys[j] = keys[i]!
      keys[i] = key
      // peek, not get: being listed does not make a peer recently seen (an expired one is dropped here).
      const peer = this.peers.peek(key)
      if (!peer) continue
      if (isWebRTC && peer.peerId === ownPeerId) continue
      if (isWebRTC !== (peer.type === 'ws')) continue
      picked.push(peer)
    }
    return picked
  }
}

const compactBytes = new WeakMap<TrackerPeer, Buffer>()
const IPV4 = /^[\d.]+$/
const IPV6 = /^[\da-fA-F:]+$/

/** IPv4 peers as 6 bytes each, IPv6 peers as 18 (address, then port, big-endian). */
function compactPeers(peers: TrackerPeer[]): { v4: Buffer; v6: Buffer } {
  const v4: Buffer[] = []
  const v6: Buffer[] = []
  for (const peer of peers) {
    let bytes = compactBytes.get(peer)
    if (!bytes) {
      // The library's own tests of what is an IPv4 or IPv6 address; a peer that passes neither is left out.
      const kind = IPV4.test(peer.ip) ? ipaddr.IPv4 : IPV6.test(peer.ip) ? ipaddr.IPv6 : undefined
      if (!kind?.isValid(peer.ip)) continue
      const address = kind.parse(peer.ip).toByteArray()
      bytes = Buffer.alloc(address.length + 2)
      bytes.set(address)
      bytes.writeUInt16BE(peer.port, address.length)
      compactBytes.set(peer, bytes)
    }
    ;(bytes.length === 6 ? v4 : v6).push(bytes)
  }
  return { v4: Buffer.concat(v4), v6: Buffer.concat(v6) }
}
