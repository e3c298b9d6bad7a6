import type WebTorrent from 'webtorrent'
import type { AddOptions, Torrent, Wire } from 'webtorrent'
import parseTorrent from 'parse-torrent'
import { RookeryError, UnavailableError } from '../errors.ts'
import { dropCorruptPeers } from './corrupt-peers.ts'
import { assemblePiecesInPlace, releasePiecesOnceWritten } from './piece-memory.ts'
import { skipRedundantHaves, wantsEveryHave } from './redundant-haves.ts'
import { superSeed, type SuperSeedOptions } from './super-seed.ts'
import { verifiedPrefix } from './verified-prefix.ts'
import { heldForDiskMs, limitWriteBacklog } from './write-backlog.ts'

assemblePiecesInPlace()

/** Bytes a torrent received, split by source, so a deploy can say how much the swarm saved the origin. */
export interface TrafficStats {
  fromPeers: number
  fromWebseed: number
  uploaded: number
  /** Milliseconds the download waited for the disk (src/swarm/write-backlog.ts): 0 when the disk kept up. */
  heldForDiskMs: number
}

/**
 * Pieces read back from disk for peers are kept in memory, up to this many bytes per torrent. Without a
 * cache webtorrent reads each 16 KiB block a peer asks for with its own read, and in a rollout every peer
 * asks for the same fresh piece: 16 reads per 256 KiB piece per peer instead of one. webtorrent's default
 * (20 pieces) is 80 MB with the 4 MiB pieces of a large release; slots are counted from bytes instead.
 */
const STORE_CACHE_BYTES = 8 * 1024 * 1024

function storeCacheSlots(pieceLength: number | undefined): number {
  if (!pieceLength) return 1
  return Math.max(1, Math.floor(STORE_CACHE_BYTES / pieceLength))
}

/**
 * Peers served at once per torrent. webtorrent, like internet clients, unchokes 10 and rotates them every
 * 10 s to reward peers that upload back; a datacenter has no free riders, and a host choked by the one
 * peer holding a fresh piece waits. Every interested peer is served.
 */
const UNCHOKED_PEERS = 1_000_000

/** The settings every torrent of the swarm gets, downloaded or seeded, into `<dir>/<info.name>`. */
function addOptions(dir: string, pieceLength: number | undefined, announce: string[] | undefined): AddOptions {
  return {
    path: dir,
    strategy: 'rarest',
    storeCacheSlots: storeCacheSlots(pieceLength),
    uploads: UNCHOKED_PEERS,
    ...(announce ? { announce } : {}),
  }
}

/**
 * Verified pieces a download may hold while they wait for the disk (src/swarm/write-backlog.ts): 8 pieces
 * of a 2 GiB release. 2 GiB deploy from one seeder on loopback, on a machine whose new page-cache pages
 * cost about 3 s per GiB (bench:agent --packaged, agent and swarm process summed, RSS / PSS): no limit
 * 456-600 / 412-556 MB (four runs), 32 MiB 226 / 182, 16 MiB 210-216 / 166-171 (three), 8 MiB 205 / 161.
 * 16 MiB is 5 ms of writes at 3 GB/s (a 25 Gbit/s network), so a disk that keeps up is not held back.
 */
const WRITE_BACKLOG_BYTES = 16 * 1024 * 1024

/** Pieces failing verification that a peer may send before it is dropped (one may be bad luck). */
const CORRUPT_STRIKES = 2

/** Counts received bytes per source type from the moment it is attached. */
export function countTraffic(torrent: Torrent): () => TrafficStats {
  let fromPeers = 0
  let fromWebseed = 0
  torrent.on('wire', (wire: Wire) => {
    wire.on('download', (bytes: number) => {
      if (wire.type === 'webSeed') fromWebseed += bytes
      else fromPeers += bytes
    })
  })
  return () => ({ fromPeers, fromWebseed, uploaded: torrent.uploaded, heldForDiskMs: heldForDiskMs(torrent) })
}

export interface DownloadOptions {
  /** Directory the torrent's file is written into (as `<dir>/<info.name>`); existing pieces are resumed. */
  dir: string
  /** No verified byte for this long: give up (the swarm has no source left). */
  stallTimeoutMs: number
  /** No progress for this long: ask the tracker again (it may have been down, or peers may have joined). */
  reannounceMs?: number
  /** Replaces the torrent's announce URLs (e.g. a different tracker). */
  announce?: string[]
  /**
   * Start with peers only and add the torrent's webseeds (BEP 19) once the swarm gave no data for this
   * long, e.g. when the origin seeder is down, and no peer announced a piece in that time either. Peers
   * announcing pieces mean the swarm is moving: in a large fleet the origin feeds some hosts first and the
   * others get their first pieces from those (src/swarm/super-seed.ts), and the webseed, on the same
   * server link as the origin, would only slow both. Undefined: use the webseeds from the start.
   */
  webseedFallbackMs?: number
  /**
   * The webseeds were added (see webseedFallbackMs): `quietMs` without data or an announced piece, with
   * `peers` connected, `origin` whether the origin seeder was one of them.
   */
  onWebseedFallback?: (info: WebseedFallback) => void
  onProgress?: (downloaded: number, total: number) => void
  /** A piece failed its SHA-1 check (a source sent bad data); webtorrent drops it and asks again. */
  onCorruptPiece?: (index: number, total: number) => void
  /** A peer was disconnected for sending pieces that failed verification. */
  onPeerDropped?: (peer: string, strikes: number) => void
  signal?: AbortSignal
  /** Bytes of verified pieces that may wait for the disk before no more blocks are asked for (default 16 MiB). */
  writeBacklogBytes?: number
}

export interface WebseedFallback {
  quietMs: number
  peers: number
  origin: boolean
}

/** A download under way. */
export interface Download {
  torrent: Torrent
  traffic: () => TrafficStats
  /** Resolves when every piece is verified; rejects when the download fails (see startDownload). */
  done: Promise<void>
  /**
   * Resolves once the file's first `bytes` bytes are verified and written (src/swarm/verified-prefix.ts),
   * so a reader can follow the download; rejects with the download's error if it fails first.
   */
  onDisk: (bytes: number) => Promise<void>
}

/**
 * Starts downloading a torrent into `dir`, rarest first within the first missing pieces
 * (src/swarm/picker.ts); `done` settles when every piece is verified. webtorrent never fails a download
 * whose sources are gone, it just waits: the watchdog here turns "no progress for stallTimeoutMs" into an
 * error, and re-announces while waiting because a tracker that was down at start is otherwise not asked
 * again for 30 minutes. On failure the torrent is removed from the client; the partial file stays for a
 * later resume.
 */
export async function startDownload(client: WebTorrent, torrentFile: Buffer, options: DownloadOptions): Promise<Download> {
  const parsed = await parseTorrent(torrentFile)
  const webseeds = parsed.urlList ?? []
  if (options.webseedFallbackMs !== undefined) parsed.urlList = []
  const torrent = client.add(parsed, addOptions(options.dir, parsed.pieceLength, options.announce))
  skipRedundantHaves(torrent)
  limitWriteBacklog(torrent, options.writeBacklogBytes ?? WRITE_BACKLOG_BYTES)
  const traffic = countTraffic(torrent)
  const done = watchDownload(torrent, webseeds, options)
  return { torrent, traffic, done, onDisk: verifiedPrefix(torrent, done) }
}

/** Settles when the torrent is complete (see startDownload): the watchdog, corrupt peers, abort. */
function watchDownload(torrent: Torrent, webseeds: string[], options: DownloadOptions): Promise<void> {
  const reannounceMs = options.reannounceMs ?? 3000
  let webseedsAdded = options.webseedFallbackMs === undefined
  return new Promise((resolve, reject) => {
    releasePiecesOnceWritten(torrent)
    dropCorruptPeers(torrent, { maxStrikes: CORRUPT_STRIKES, onDrop: (peer, strikes) => options.onPeerDropped?.(peer, strikes) })
    // Progress is a new high of received bytes. webtorrent's `downloaded` also counts pieces in flight and
    // drops again when one fails verification, so comparing it for change would take a source that sends
    // nothing but corrupt pieces for progress, and the watchdog would never fire. Starting from 0, not
    // below: the first tick finding nothing is not progress, so the webseed fallback and the stall time-out
    // count from the start (it took one tick, a second, longer).
    let mostBytes = 0
    let lastProgressAt = Date.now()
    // The swarm's own progress, as this host hears it: a peer announcing a piece (an origin's offer too).
    let lastPeerHaveAt = Date.now()
    torrent.on('wire', (wire: Wire) => wire.on('have', () => (lastPeerHaveAt = Date.now())))
    let lastAnnounceAt = Date.now()
    let settled = false
    let corruptPieces = 0

    const reannounce = () => {
      lastAnnounceAt = Date.now()
      torrent.discovery?.tracker?.update()
    }
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearInterval(watchdog)
      options.signal?.removeEventListener('abort', onAbort)
      if (!err) return resolve()
      torrent.destroy({ destroyStore: false }, () => reject(err))
    }
    const onAbort = () => finish(new RookeryError('ROOKERY_ABORTED', `download of ${torrent.name ?? 'torrent'} aborted`))

    const watchdog = setInterval(() => {
      if (torrent.downloaded > mostBytes) {
        mostBytes = torrent.downloaded
        lastProgressAt = Date.now()
        options.onProgress?.(torrent.downloaded, torrent.length)
        return
      }
      const idle = Date.now() - lastProgressAt
      // Quiet: neither data nor a peer announcing a piece.
      const quietMs = Math.min(idle, Date.now() - lastPeerHaveAt)
      if (!webseedsAdded && quietMs >= options.webseedFallbackMs!) {
        // The swarm is not delivering and not moving (no origin seeder, no peers yet): fall back to HTTP.
        webseedsAdded = true
        const peers = torrent.wires.filter((w) => w.type !== 'webSeed')
        options.onWebseedFallback?.({ quietMs, peers: peers.length, origin: peers.some(wantsEveryHave) })
        lastProgressAt = Date.now()
        for (const url of webseeds) torrent.addWebSeed(url)
      } else if (idle >= options.stallTimeoutMs) {
        const corrupt = corruptPieces > 0 ? `; ${corruptPieces} pieces failed verification: a source serves corrupt data` : ''
        finish(
          new UnavailableError(
            corruptPieces > 0 ? 'ROOKERY_CORRUPT_SOURCE' : 'ROOKERY_STALLED',
            `download of ${torrent.name} stalled: no verified data for ${Math.round(idle / 1000)}s with ${torrent.numPeers} peers (${Math.round(torrent.progress * 100)}% done)${corrupt}`,
            { hint: 'check that the server (tracker, webseed) is reachable and its tarball intact; the agent retries later' },
          ),
        )
      } else if (Date.now() - lastAnnounceAt >= reannounceMs) {
        reannounce()
      }
    }, Math.min(1000, Math.max(50, options.stallTimeoutMs / 4)))
    watchdog.unref()

    torrent.on('warning', (err: Error) => {
      const corrupt = /^Piece (\d+) failed verification/.exec(err.message)
      if (corrupt) {
        corruptPieces++
        options.onCorruptPiece?.(Number(corrupt[1]), corruptPieces)
        return
      }
      // A failed announce (tracker down) is a warning, not an error: ask again soon instead of in 30 minutes.
      if (Date.now() - lastAnnounceAt >= reannounceMs) reannounce()
    })
    torrent.once('error', (err: Error) => finish(new UnavailableError('ROOKERY_TORRENT', `torrent error: ${err.message}`, { cause: err })))
    torrent.once('done', () => finish())
    torrent.once('ready', () => {
      if (torrent.done) finish()
    })
    if (options.signal?.aborted) onAbort()
    else options.signal?.addEventListener('abort', onAbort)
  })
}

/**
 * Seeds a file that is already on disk as `<dir>/<info.name>`. With `skipVerify` the pieces are trusted
 * without re-hashing (the server's own kept releases); otherwise they are checked once.
 */
export async function seedTorrent(
  client: WebTorrent,
  torrentFile: Buffer,
  dir: string,
  options: { skipVerify: boolean; announce?: string[]; superSeed?: boolean; onEveryPieceOut?: SuperSeedOptions['onEveryPieceOut'] },
): Promise<Torrent> {
  const parsed = await parseTorrent(torrentFile)
  return new Promise((resolve, reject) => {
    const torrent = client.add(parsed, { ...addOptions(dir, parsed.pieceLength, options.announce), skipVerify: options.skipVerify })
    if (options.superSeed) {
      superSeed(torrent as Parameters<typeof superSeed>[0], { windowMs: SUPER_SEED_WINDOW_MS, offerTimeoutMs: SUPER_SEED_OFFER_TIMEOUT_MS, onEveryPieceOut: options.onEveryPieceOut })
    }
    torrent.once('error', reject)
    torrent.once('ready', () => resolve(torrent))
    // A seeder whose first announce failed (tracker down or not started yet) would wait 30 minutes.
    let pending: NodeJS.Timeout | undefined
    torrent.on('warning', (err: Error) => {
      if (pending || /^Piece \d+ failed/.test(err.message)) return
      pending = setTimeout(() => {
        pending = undefined
        if (!torrent.destroyed) torrent.discovery?.tracker?.update()
      }, SEED_REANNOUNCE_MS)
      pending.unref()
    })
  })
}

const SEED_REANNOUNCE_MS = 5000

/** A super-seeding origin offers each peer about a second of what it sends that peer. */
const SUPER_SEED_WINDOW_MS = 1000

/** Offers a peer has not asked for in this time go to other pieces (it may have them unannounced). */
const SUPER_SEED_OFFER_TIMEOUT_MS = 30_000

/** Removes a torrent from the client without deleting its file. */
export function stopTorrent(client: WebTorrent, torrent: Torrent): Promise<void> {
  if (torrent.destroyed) return Promise.resolve()
  return new Promise((resolve) => torrent.destroy({ destroyStore: false }, () => resolve()))
}
