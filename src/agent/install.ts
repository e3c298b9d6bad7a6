import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import { UnavailableError, VerifyError } from '../errors.ts'
import type { ReleaseEntry } from '../manifest/manifest.ts'
import { extractRelease } from '../release/extract.ts'
import { readTorrent } from '../release/torrent.ts'
import { downloadTorrent, stopTorrent } from '../swarm/download.ts'
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
 * <state_dir>/downloads/<infohash>, extraction into releases/<tag> with the SHA-256 of the whole tarball
 * checked in the same pass, then activation. The extracted tree enters releases/ only once the checksum
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
  const current = await new AppLayout(app.deploy_to).currentTag()
  const report = (fields: Omit<ReportFields, 'tag' | 'current'>) => ctx.report(app.name, { tag: release.tag, current, ...fields })
  log.info({ infohash: release.infohash, size: release.size }, 'download started')
  report({ phase: 'downloading', progress: { done: 0, total: release.size } })
  let lastProgressReport = Date.now()
  const download = await downloadTorrent(swarm.client, res.body, {
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
  const downloadMs = Date.now() - started
  const tarball = join(dir, info.name)
  const layout = new AppLayout(app.deploy_to)
  const traffic = download.traffic()
  log.info({ download_ms: downloadMs, from_peers: traffic.fromPeers, from_webseed: traffic.fromWebseed }, 'download complete')
  ctx.metrics.downloaded(app.name, 'peer', traffic.fromPeers)
  ctx.metrics.downloaded(app.name, 'webseed', traffic.fromWebseed)
  try {
    await layout.prepare()
    // The SHA-256 is checked in the same pass as the extraction (one read of the tarball, not two); the
    // extracted tree leaves its staging directory only if it matches.
    const extracted = await extractRelease(tarball, layout.releaseDir(release.tag), {
      maxBytes: ctx.config.max_release_size,
      maxEntries: ctx.config.max_release_entries,
    }, { sha256: release.sha256 }).catch(async (err: unknown) => {
      // A corrupt download is not kept for a resume: the next attempt starts over.
      if ((err as { code?: unknown }).code === 'ROOKERY_CHECKSUM_MISMATCH') await rm(dir, { recursive: true, force: true })
      throw err
    })
    const extractMs = Date.now() - started - downloadMs
    log.info('download verified')
    report({ phase: 'verified', timings: { download_ms: downloadMs } })
    await layout.touch(release.tag)
    log.info({ files: extracted.files, bytes: extracted.bytes, extract_ms: extractMs }, 'release extracted')
    report({ phase: 'extracted', timings: { download_ms: downloadMs, extract_ms: extractMs } })
  } catch (err) {
    // Out of the client, so a retry can add the same torrent again (the verified file stays to resume).
    await stopTorrent(swarm.client, download.torrent)
    throw err
  }

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
