import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import type WebTorrent from 'webtorrent'
import { RookeryError, UnavailableError, VerifyError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { ReleaseEntry } from '../manifest/manifest.ts'
import { extractRelease } from '../release/extract.ts'
import { sha256File } from '../release/hash.ts'
import { readTorrent } from '../release/torrent.ts'
import { downloadTorrent, stopTorrent } from '../swarm/download.ts'
import type { AgentConfig, AppConfig } from './config.ts'
import { httpGet } from './fetch.ts'
import { runHook } from './hook.ts'
import { AppLayout } from './layout.ts'
import type { Linger } from './linger.ts'
import type { AppState, StateFile } from './state.ts'
import type { ReportFields } from './reporter.ts'
import type { AgentMetrics } from './metrics.ts'

export interface DeployContext {
  config: AgentConfig
  client: WebTorrent
  state: StateFile
  linger: Linger
  log: Logger
  /** Seed window to use; 0 in `--once` mode, where the process exits right after. */
  seedWindowMs: number
  /** Aborts a download in progress when the agent stops (a running hook is left to finish). */
  signal: AbortSignal
  /** Tells the server about a phase change; never waits. */
  report: (app: string, fields: ReportFields) => void
  metrics: AgentMetrics
}

const PROGRESS_REPORT_MS = 2000

const MAX_TORRENT_FILE = 16 * 1024 * 1024

/**
 * Installs a release: .torrent (checked against the manifest's infohash), swarm download into
 * <state_dir>/downloads/<infohash>, SHA-256 of the whole tarball, extraction into releases/<tag>, then
 * activation. Nothing is extracted before the checksum matched; nothing becomes current before it is
 * fully extracted.
 */
export async function installRelease(ctx: DeployContext, app: AppConfig, release: ReleaseEntry): Promise<void> {
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
  const download = await downloadTorrent(ctx.client, res.body, {
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
  try {
    const digest = await sha256File(tarball)
    if (digest !== release.sha256) {
      await rm(dir, { recursive: true, force: true })
      throw new VerifyError('ROOKERY_CHECKSUM_MISMATCH', `downloaded ${info.name} has sha256 ${digest}, the manifest says ${release.sha256}`)
    }
    log.info({ download_ms: downloadMs, from_peers: traffic.fromPeers, from_webseed: traffic.fromWebseed }, 'download verified')
    report({ phase: 'verified', timings: { download_ms: downloadMs } })
    ctx.metrics.downloadBytes.inc({ app: app.name, source: 'peer' }, traffic.fromPeers)
    ctx.metrics.downloadBytes.inc({ app: app.name, source: 'webseed' }, traffic.fromWebseed)
    await layout.prepare()
    const extracted = await extractRelease(tarball, layout.releaseDir(release.tag), {
      maxBytes: ctx.config.max_release_size,
      maxEntries: ctx.config.max_release_entries,
    })
    await layout.touch(release.tag)
    log.info({ files: extracted.files, bytes: extracted.bytes }, 'release extracted')
    report({ phase: 'extracted', timings: { download_ms: downloadMs, extract_ms: Date.now() - started - downloadMs } })
  } catch (err) {
    // Out of the client, so a retry can add the same torrent again (the verified file stays to resume).
    await stopTorrent(ctx.client, download.torrent)
    throw err
  }

  ctx.linger.hold(download.torrent, dir, ctx.seedWindowMs, download.traffic, { app: app.name, tag: release.tag })
  await activateRelease(ctx, app, release.tag, {
    tag: release.tag,
    at: new Date().toISOString(),
    duration_ms: Date.now() - started,
    downloaded_from_peers: traffic.fromPeers,
    downloaded_from_webseed: traffic.fromWebseed,
    uploaded: traffic.uploaded,
  })
}

/**
 * Switches `current` to an installed release and runs the post_install hook. If the hook fails, the
 * previous release becomes current again (or `current` is removed when there was none) and the failure
 * is thrown. Then old releases are pruned, never current nor previous.
 */
export async function activateRelease(
  ctx: DeployContext,
  app: AppConfig,
  tag: string,
  lastDeploy?: AppState['last_deploy'],
): Promise<void> {
  const log = ctx.log.child({ app: app.name, tag })
  const layout = new AppLayout(app.deploy_to)
  const before = ctx.state.app(app.name)
  // Redoing an interrupted activation: `current` may already point at `tag`; the real previous is recorded.
  const previous = before.activating?.tag === tag ? before.activating.previous : await layout.currentTag()
  await ctx.state.saveApp(app.name, { ...before, activating: { tag, previous } })
  await layout.switchCurrent(tag)
  log.info({ previous }, 'current switched')

  if (app.post_install) {
    ctx.report(app.name, { tag, current: tag, phase: 'hook_running' })
    const result = await runHook({
      command: app.post_install,
      cwd: layout.releaseDir(tag),
      env: {
        ROOKERY_APP: app.name,
        ROOKERY_TAG: tag,
        ROOKERY_RELEASE_DIR: layout.releaseDir(tag),
        ROOKERY_PREVIOUS_TAG: previous ?? '',
        ROOKERY_PREVIOUS_RELEASE_DIR: previous ? layout.releaseDir(previous) : '',
        ROOKERY_DEPLOY_TO: app.deploy_to,
      },
      timeoutMs: app.hook_timeout,
      ...(app.user ? { user: app.user } : {}),
      log,
    })
    ctx.metrics.hookSeconds.observe({ app: app.name, result: result.ok ? 'ok' : 'failed' }, result.durationMs / 1000)
    if (!result.ok) {
      if (previous) await layout.switchCurrent(previous)
      else await layout.clearCurrent()
      const { activating: _, ...rest } = ctx.state.app(app.name)
      await ctx.state.saveApp(app.name, rest)
      const how = result.timedOut ? `timed out after ${app.hook_timeout} ms` : result.signal ? `killed by ${result.signal}` : `exited ${result.exitCode}`
      const last = result.tail.at(-1)
      const message = `post_install ${how}${last ? ` (last output: ${last})` : ''}; ${previous ? `back on ${previous}` : 'no previous release, current removed'}`
      ctx.report(app.name, { tag, current: previous, phase: 'hook_failed', error: message, hook_tail: result.tail })
      throw new RookeryError('ROOKERY_HOOK_FAILED', message)
    }
    log.info({ duration_ms: result.durationMs }, 'post_install succeeded')
  }

  const { activating: _, ...state } = ctx.state.app(app.name)
  const failures = { ...state.failures }
  delete failures[tag]
  const newPrevious = previous && previous !== tag ? previous : state.previous
  await ctx.state.saveApp(app.name, {
    ...state,
    previous: newPrevious,
    failures,
    ...(lastDeploy ? { last_deploy: lastDeploy } : {}),
  })
  const protect = new Set([tag, ...(newPrevious ? [newPrevious] : [])])
  const pruned = await layout.prune(app.keep_releases, protect)
  log.info({ previous, pruned }, 'release activated')
  ctx.report(app.name, { tag, current: tag, phase: 'activated' })
}

/** Whether a failure is worth retrying with the same content (network, disk) or not (bad content, hook). */
export function isPermanent(err: unknown): boolean {
  return err instanceof VerifyError || (err instanceof RookeryError && err.code === 'ROOKERY_HOOK_FAILED')
}

