import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import { UnavailableError, VerifyError } from '../errors.ts'
import type { ReleaseEntry } from '../manifest/manifest.ts'
import { extractRelease } from '../release/extract.ts'
import { readTorrent } from '../release/torrent.ts'
import { startDownload, stopTorrent } from '../swarm/download.ts'
import type { AppConfig } from './config.ts'
import { activateRelease, type DeployContext } from './deploy.ts'
import { httpGet } from './fetch.ts'
import { AppLayout } from './layout.ts'
import type { ReportFields } from './reporter.ts'
import type { Swarm } from './swarm.ts'

const PROGRESS_REPORT_MS = 2000

const MAX_TORRENT_FILE = 16 * 1024 * 1024

/**
 * Installs a release: .torrent (checked against the manifest's infohash), swarm download into
 * <state_dir>/downloads/<infohash> and, following it, extraction into releases/<tag> with the SHA-256 of
 * the whole tarball checked in the same pass, then activation. `extract_ms` is what the extraction took
 * after the last piece came in. The extracted tree enters releases/ only once the checksum
 * matched; nothing becomes current before it is fully extracted and verified.
 */
export async function installRelease(ctx: DeployContext, swarm: Swarm, app: AppConfig, release: ReleaseEntry): Promise<void> {
  const log = ctx.log.child({ app: app.name, tag: release.tag })
  const started = Date.now()
  const res = await httpGet(release.torrent_url, { timeoutMs: ctx.config.request_timeout, maxBytes: MAX_TORRENT_FILE })
  if (res.status !== 200) throw new UnavailableError('ROOKERY_TORRENT_STATUS', `GET ${release.torrent_url}: answered ${res.status}`)
  const info = await readTorrent(res.body)
  if (info.infoHash !== release.infohash || info.length !== release.size) {
    throw new VerifyError('ROOKERY_TORRENT_MISMATCH', `${release.torrent_url} has infohash ${info.infoHash} and ${info.length} bytes, the manifest says ${release.infohash} and ${release.size}`)
  }

  const dir = join(ctx.config.state_dir, 'downloads', release.infohash)
  const layout = new AppLayout(app.deploy_to)
  const current = await layout.currentTag()
  await layout.prepare()
  const report = (fields: Omit<ReportFields, 'tag' | 'current'>) => ctx.report(app.name, { tag: release.tag, current, ...fields })
  log.info({ infohash: release.infohash, size: release.size }, 'download started')
  report({ phase: 'downloading', progress: { done: 0, total: release.size } })
  let lastProgressReport = Date.now()
  const download = await startDownload(swarm.client, res.body, {
    dir,
    stallTimeoutMs: ctx.config.stall_timeout,
    signal: ctx.signal,
    onProgress: (done, total) => {
      if (Date.now() - lastProgressReport < PROGRESS_REPORT_MS) return
      lastProgressReport = Date.now()
      report({ phase: 'downloading', progress: { done, total } })
    },
    onCorruptPiece: (piece, total) => {
      // Logged, not fatal: webtorrent asks another source; the first few and then every 100th are enough.
      if (total <= 3 || total % 100 === 0) log.warn({ piece, corrupt_pieces: total }, 'piece failed verification: a source sent corrupt data')
    },
    onPeerDropped: (peer, strikes) => log.warn({ peer, strikes }, 'peer dropped: it sent pieces that failed verification'),
    ...(ctx.config.webseed_fallback > 0 ? { webseedFallbackMs: ctx.config.webseed_fallback } : {}),
    ...(ctx.config.announce ? { announce: ctx.config.announce } : {}),
  })
  // The download's duration and traffic, read once when its last piece is verified.
  const downloaded = download.done.then(() => {
    const downloadMs = Date.now() - started
    const traffic = download.traffic()
    log.info({ download_ms: downloadMs, from_peers: traffic.fromPeers, from_webseed: traffic.fromWebseed }, 'download complete')
    ctx.metrics.downloaded(app.name, 'peer', traffic.fromPeers)
    ctx.metrics.downloaded(app.name, 'webseed', traffic.fromWebseed)
    return { downloadMs, traffic }
  })
  // The extraction follows the download as the tarball arrives front to back (src/swarm/picker.ts), so
  // little of it is left when the last piece is in. The SHA-256 of the whole tarball is checked in the
  // same pass; the extracted tree leaves its staging directory only if it matches.
  const extraction = extractRelease(join(dir, info.name), layout.releaseDir(release.tag), {
    maxBytes: ctx.config.max_release_size,
    maxEntries: ctx.config.max_release_entries,
  }, { sha256: release.sha256 }, { size: info.length, onDisk: download.onDisk })
  const [got, unpacked] = await Promise.allSettled([downloaded, extraction])
  // A failed download fails the extraction too (it waits for bytes that never come): its error is the news.
  if (got.status === 'rejected') throw got.reason
  const { downloadMs, traffic } = got.value
  if (unpacked.status === 'rejected') {
    // Out of the client, so a retry can add the same torrent again (the verified file stays to resume)...
    await stopTorrent(swarm.client, download.torrent)
    // ...unless it is corrupt: the next attempt starts over.
    if ((unpacked.reason as { code?: unknown }).code === 'ROOKERY_CHECKSUM_MISMATCH') await rm(dir, { recursive: true, force: true })
    throw unpacked.reason
  }
  const extracted = unpacked.value
  const extractMs = Date.now() - started - downloadMs
  log.info('download verified')
  report({ phase: 'verified', timings: { download_ms: downloadMs } })
  await layout.touch(release.tag)
  log.info({ files: extracted.files, bytes: extracted.bytes, extract_ms: extractMs }, 'release extracted')
  report({ phase: 'extracted', timings: { download_ms: downloadMs, extract_ms: extractMs } })

  swarm.linger.hold(download.torrent, dir, ctx.seedWindowMs, download.traffic, { app: app.name, tag: release.tag })
  await activateRelease(ctx, app, release.tag, {
    tag: release.tag,
    at: new Date().toISOString(),
    duration_ms: Date.now() - started,
    downloaded_from_peers: traffic.fromPeers,
    downloaded_from_webseed: traffic.fromWebseed,
    uploaded: traffic.uploaded,
  })
}
