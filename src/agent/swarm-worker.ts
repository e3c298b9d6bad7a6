import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { VerifyError } from '../errors.ts'
import type { ExtractResult } from '../release/extract.ts'
import { readTorrent } from '../release/torrent.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../swarm/client.ts'
import { startDownload, stopTorrent } from '../swarm/download.ts'
import { Linger } from './linger.ts'
import { sendableError, type FromWorker, type InstallRequest, type OpenMessage, type ToWorker } from './swarm-protocol.ts'

/**
 * The swarm process (`rookery __swarm-worker`, forked by src/agent/swarm.ts): the agent's webtorrent
 * client, its downloads, their extraction and seed windows. It exits when the agent closes it or goes away,
 * and with it goes what a deploy left in memory (about 70 MB after a 2 GiB release: glibc keeps freed
 * heap; a full GC returns none of it).
 */
export async function runSwarmWorker(): Promise<void> {
  // A Ctrl-C on a terminal reaches the whole process group; the agent decides when its swarm stops.
  process.on('SIGINT', () => {})
  const open = await new Promise<OpenMessage>((resolve) => process.once('message', (m: ToWorker) => m.type === 'open' && resolve(m)))
  const client = createSwarmClient({ torrentPort: open.torrentPort, requestPipelineSeconds: open.requestPipelineSeconds })
  try {
    await whenListening(client, open.torrentPort)
  } catch (err) {
    send({ type: 'open-failed', error: sendableError(err) })
    await destroySwarmClient(client)
    return await exit()
  }
  client.on('error', (err: Error) => send({ type: 'client-error', message: err.message }))
  const linger = new Linger(client, (over) => send({ type: 'seed-over', ...over }))
  const installs = new Map<number, AbortController>()
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      for (const abort of installs.values()) abort.abort()
      await linger.stopAll()
      await destroySwarmClient(client)
      await exit()
    })())

  process.on('message', (message: ToWorker) => {
    if (message.type === 'install') {
      const abort = new AbortController()
      installs.set(message.id, abort)
      void install(message, abort.signal).then(
        (outcome) => send({ type: 'extracted', id: message.id, ...outcome }),
        (err: unknown) => send({ type: 'failed', id: message.id, error: sendableError(err) }),
      ).finally(() => installs.delete(message.id))
    } else if (message.type === 'abort') {
      installs.get(message.id)?.abort()
    } else if (message.type === 'close') {
      void close()
    }
  })
  // The agent exited (or was killed): nothing is left to report to, and its port must come free.
  process.on('disconnect', () => void close())
  process.on('SIGTERM', () => void close())
  send({ type: 'listening', port: client.torrentPort })

  /** Downloads, extracts while the tarball arrives (SHA-256 checked in the same pass), then seeds. */
  async function install(req: { id: number } & InstallRequest, signal: AbortSignal): Promise<ExtractResult> {
    const torrentFile = Buffer.from(req.torrent)
    const info = await readTorrent(torrentFile)
    if (info.infoHash !== req.infohash || info.length !== req.size) {
      throw new VerifyError('ROOKERY_TORRENT_MISMATCH', `${req.torrentUrl} has infohash ${info.infoHash} and ${info.length} bytes, the manifest says ${req.infohash} and ${req.size}`)
    }
    send({ type: 'started', id: req.id })
    const download = await startDownload(client, torrentFile, {
      dir: req.dir,
      stallTimeoutMs: req.stallTimeoutMs,
      signal,
      onProgress: (done, total) => send({ type: 'progress', id: req.id, done, total }),
      onCorruptPiece: (piece, total) => send({ type: 'corrupt-piece', id: req.id, piece, total }),
      onPeerDropped: (peer, strikes) => send({ type: 'peer-dropped', id: req.id, peer, strikes }),
      onWebseedFallback: (fallback) => send({ type: 'webseed-fallback', id: req.id, ...fallback }),
      ...(req.webseedFallbackMs !== undefined ? { webseedFallbackMs: req.webseedFallbackMs } : {}),
      ...(req.announce ? { announce: req.announce } : {}),
    })
    const downloaded = download.done.then(() => send({ type: 'downloaded', id: req.id, traffic: download.traffic() }))
    downloaded.catch(() => {}) // read below, after tar is loaded: not an unhandled rejection meanwhile
    // tar loads while the first pieces are on their way, not before the swarm process can listen.
    const { extractRelease } = await import('../release/extract.ts')
    // The extraction follows the download as the tarball arrives front to back (src/swarm/picker.ts), so
    // little of it is left when the last piece is in. The extracted tree leaves its staging directory only
    // if the whole tarball's SHA-256 matches.
    const extraction = extractRelease(join(req.dir, info.name), req.releaseDir, req.limits, { sha256: req.sha256 }, { size: info.length, onDisk: download.onDisk })
    const [got, unpacked] = await Promise.allSettled([downloaded, extraction])
    // A failed download fails the extraction too (it waits for bytes that never come): its error is the news.
    if (got.status === 'rejected') throw got.reason
    if (unpacked.status === 'rejected') {
      // Out of the client, so a retry can add the same torrent again (the verified file stays to resume)...
      await stopTorrent(client, download.torrent)
      // ...unless it is corrupt: the next attempt starts over.
      if ((unpacked.reason as { code?: unknown }).code === 'ROOKERY_CHECKSUM_MISMATCH') await rm(req.dir, { recursive: true, force: true })
      throw unpacked.reason
    }
    linger.hold(download.torrent, req.dir, req.seedWindowMs, download.traffic, { app: req.app, tag: req.tag })
    return unpacked.value
  }
}

const unsent = new Set<Promise<void>>()

function send(message: FromWorker): void {
  // After the agent went away there is no one to tell.
  if (!process.connected) return
  const sent = new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()))
  unsent.add(sent)
  void sent.then(() => unsent.delete(sent))
}

/** Exits once every message is out (the last ones say which seed windows ended). */
async function exit(): Promise<void> {
  await Promise.all(unsent)
  if (process.connected) process.disconnect()
  process.exit(0)
}
