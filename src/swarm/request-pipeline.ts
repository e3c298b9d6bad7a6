import type WebTorrent from 'webtorrent'
import Torrent from 'webtorrent/lib/torrent.js'

/**
 * How many block requests a host keeps outstanding with each peer. webtorrent asks for 2 blocks plus one
 * second of the peer's current rate (topping up below half a second): sized for internet round trips.
 * In a rollout every host uploads at its link's rate, and a peer sends the blocks asked of it in order, on
 * the same TCP connection as its own requests: a second of requests per peer left 70 to 510 KB queued per
 * connection in the hosts' send buffers (`ss -tmi`, 8 hosts at 25 Mbit/s), so each request a busy host
 * wrote waited up to 1.4 s behind its own uploads, and pipelines sized by the rate they delivered kept
 * those queues full. Fewer requests outstanding keep the queues short and let requests reach the peers
 * with upload to spare. Fleet bed, 8 hosts, download complete x F/C by seconds of rate requested ahead:
 * 3 s 1.40; 1 s (webtorrent) 1.29-1.31; 0.5 s 1.26; 0.3 s 1.23-1.26; 0.15 s 1.22; 0.1 s 1.18-1.19;
 * 0.05 s 1.17. Inside a datacenter a round trip is well under a millisecond, so 0.1 s still covers it
 * a hundred times; across regions (tens of ms) the agent's `request_pipeline` should be raised.
 *
 * On top of the rate's share, one block (webtorrent: two). The blocks asked of all its peers at once can
 * all arrive at a host together, and its downlink queue drops what does not fit: with 8 hosts, each
 * keeping at least 2 blocks asked of each of 7 peers and the origin, the origin retransmitted 426-935
 * segments in a run, and 171-320 with 1 block (hosts: 754-963 against 241-273). The median host
 * switched at 1.13-1.15 x F/C against 1.14-1.18 (eight runs each, alternating; docs/performance.md,
 * fourteenth session). A peer with no measured rate yet gets one request at a time until blocks come in.
 *
 * As webtorrent does with its durations, a peer's requests are topped up once fewer than half of them are
 * left (1 block plus seconds / 2 of its rate), not after every block: re-planning on every block cost a
 * quarter more CPU in the bed. webtorrent caps its pipeline at the peer's `reqq` (BEP 10: the requests the
 * peer says it queues); during each re-plan it is shown a `reqq` of 1 block plus `seconds` of the peer's
 * rate (or the peer's own, if lower). Web seeds are left alone. Applied once, to the class, when the swarm
 * module loads.
 */
/** For clients not given a value (the agent always passes its `request_pipeline`). */
const DEFAULT_PIPELINE_SECONDS = 0.1

const BLOCK_LENGTH = 16 * 1024
/** Blocks kept requested from every peer whatever its rate (see above). */
const MIN_BLOCKS = 1
const pipelineSeconds = new WeakMap<WebTorrent, number>()
let patched = false

/** Sets the seconds of each peer's rate that `client` keeps requested (the default until called). */
export function setRequestPipeline(client: WebTorrent, seconds: number): void {
  pipelineSeconds.set(client, seconds)
}

export function shortenRequestPipelines(): void {
  if (patched) return
  patched = true
  const original = Torrent.prototype._updateWire
  Torrent.prototype._updateWire = function (this: TorrentInstance, wire: WireInstance) {
    if (wire.type === 'webSeed') return original.call(this, wire)
    const seconds = pipelineSeconds.get(this.client) ?? DEFAULT_PIPELINE_SECONDS
    const rate = wire.downloadSpeed()
    if (wire.requests.length >= requestPipelineLength(rate, seconds / 2)) return
    const peerInfo = wire.peerExtendedHandshake
    const peerReqq = typeof peerInfo?.reqq === 'number' && peerInfo.reqq > 0 ? peerInfo.reqq : Infinity
    wire.peerExtendedHandshake = { reqq: Math.min(requestPipelineLength(rate, seconds), peerReqq) }
    try {
      return original.call(this, wire)
    } finally {
      wire.peerExtendedHandshake = peerInfo
    }
  }
}

/** Blocks to keep requested from a peer delivering `bytesPerSecond`: 1, plus `seconds` of its rate. */
export function requestPipelineLength(bytesPerSecond: number, seconds: number): number {
  return MIN_BLOCKS + Math.ceil((seconds * bytesPerSecond) / BLOCK_LENGTH)
}

interface TorrentInstance {
  client: WebTorrent
}

interface WireInstance {
  type: string
  requests: unknown[]
  peerExtendedHandshake: { reqq?: unknown } | undefined
  downloadSpeed(): number
}
