import { join } from 'node:path'
import { UnavailableError } from '../errors.ts'
import type { ReleaseEntry } from '../manifest/manifest.ts'
import type { TrafficStats } from '../swarm/download.ts'
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
 * the whole tarball checked in the same pass (both in the swarm process, src/agent/swarm-worker.ts), then
 * activation. `extract_ms` is what the extraction took after the last piece came in. The extracted tree
 * enters releases/ only once the checksum matched; nothing becomes current before it is fully extracted
 * and verified. A swarm process still starting does so while the .torrent is fetched.
 */
export async function installRelease(ctx: DeployContext, swarm: Swarm, app: AppConfig, release: ReleaseEntry): Promise<void> {
  const log = ctx.log.child({ app: app.name, tag: release.tag })
  const started = Date.now()
  const res = await httpGet(release.torrent_url, { timeoutMs: ctx.config.request_timeout, maxBytes: MAX_TORRENT_FILE })
  if (res.status !== 200) throw new UnavailableError('ROOKERY_TORRENT_STATUS', `GET ${release.torrent_url}: answered ${res.status}`)

  const dir = join(ctx.config.state_dir, 'downloads', release.infohash)
  const layout = new AppLayout(app.deploy_to)
  const current = await layout.currentTag()
  await layout.prepare()
  const report = (fields: Omit<ReportFields, 'tag' | 'current'>) => ctx.report(app.name, { tag: release.tag, current, ...fields })
  let lastProgressReport = Date.now()
  let downloaded: { downloadMs: number; traffic: TrafficStats } | undefined
  const extracted = await swarm.install({
    torrent: res.body,
    torrentUrl: release.torrent_url,
    infohash: release.infohash,
    size: release.size,
    sha256: release.sha256,
    dir,
    releaseDir: layout.releaseDir(release.tag),
    limits: { maxBytes: ctx.config.max_release_size, maxEntries: ctx.config.max_release_entries },
    stallTimeoutMs: ctx.config.stall_timeout,
    ...(ctx.config.webseed_fallback > 0 ? { webseedFallbackMs: ctx.config.webseed_fallback } : {}),
    ...(ctx.config.announce ? { announce: ctx.config.announce } : {}),
    seedWindowMs: ctx.seedWindowMs,
    app: app.name,
    tag: release.tag,
  }, {
    onStarted: () => {
      log.info({ infohash: release.infohash, size: release.size }, 'download started')
      report({ phase: 'downloading', progress: { done: 0, total: release.size } })
    },
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
    // Once per download. Expected now and then at the start of a large rollout; from many hosts, or with
    // origin false, it says the origin seeder is out of their reach and the server's HTTP carries the release.
    onWebseedFallback: ({ quietMs, peers, origin }) =>
      log.info({ quiet_ms: quietMs, peers, origin_connected: origin }, 'download falls back to the webseed: the swarm gave no data'),
    onDownloaded: (traffic) => {
      downloaded = { downloadMs: Date.now() - started, traffic }
      // disk_wait_ms: how long the disk, not the network, set the pace (pieces waited for their write).
      log.info({ download_ms: downloaded.downloadMs, from_peers: traffic.fromPeers, from_webseed: traffic.fromWebseed, disk_wait_ms: traffic.heldForDiskMs }, 'download complete')
      ctx.metrics.downloaded(app.name, 'peer', traffic.fromPeers)
      ctx.metrics.downloaded(app.name, 'webseed', traffic.fromWebseed)
    },
  }, ctx.signal)
  // The swarm process says 'downloaded' before 'extracted', on one ordered channel.
  const { downloadMs, traffic } = downloaded!
  const extractMs = Date.now() - started - downloadMs
  log.info('download verified')
  report({ phase: 'verified', timings: { download_ms: downloadMs } })
  await layout.touch(release.tag)
  // flush: 'filesystem' (one syncfs) or 'each entry'; flush_ms is part of extract_ms (src/release/sync-tree.ts).
  log.info({ files: extracted.files, bytes: extracted.bytes, extract_ms: extractMs, flush: extracted.flushed, flush_ms: extracted.flushMs }, 'release extracted')
  report({ phase: 'extracted', timings: { download_ms: downloadMs, extract_ms: extractMs } })

  await activateRelease(ctx, app, release.tag, {
    tag: release.tag,
    at: new Date().toISOString(),
    duration_ms: Date.now() - started,
    downloaded_from_peers: traffic.fromPeers,
    downloaded_from_webseed: traffic.fromWebseed,
    uploaded: traffic.uploaded,
  })
}
