import { mkdir, readdir, rm } from 'node:fs/promises'
import { lockStateDir } from './lock.ts'
import { join } from 'node:path'
import cron, { type ScheduledTask } from 'node-cron'
import { describeError, ExitCode, RookeryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { KeyObject } from 'node:crypto'
import type { Manifest, Publishing, ReleaseEntry } from '../manifest/manifest.ts'
import { desiredRelease, willDeploy, type HostIdentity } from '../manifest/cohort.ts'
import { Reporter } from './reporter.ts'
import { noMetrics, serveMetrics, type AgentMetrics } from './metrics.ts'
import type { Server } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { parsePublicKey, verifyRelease } from '../release/sign.ts'
import type { AgentConfig, AppConfig } from './config.ts'
import { activateRelease, isPermanent, type DeployContext } from './deploy.ts'
import { ManifestPoller } from './fetch.ts'
import { watchManifest } from './watch.ts'
import { AppLayout } from './layout.ts'
import { planApp, retryDelayMs, type Action } from './plan.ts'
import { StateFile } from './state.ts'
import type { Swarm } from './swarm.ts'

export interface AppOutcome {
  app: string
  desired: string | null
  current: string | null
  action: Action['kind']
  error?: string
}

export interface ReconcileResult {
  /** Every app is on the manifest's current tag. */
  converged: boolean
  apps: AppOutcome[]
  /** Set when the manifest could not be read. */
  error?: RookeryError
}

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024

/**
 * The agent: on start and on every cron tick, read the manifest and bring each app to its current tag.
 * Runs never overlap; a failure of one app does not stop the others.
 *
 * It idles most of its life, so what only a download needs (webtorrent and its listening client, tar,
 * parse-torrent) lives in its swarm process (swarm.ts), which exists only during a download and the seed
 * window after it; prom-client loads only when metrics are served. See docs/performance.md.
 */
export class Agent {
  readonly #config: AgentConfig
  readonly #log: Logger
  readonly #state: StateFile
  readonly #poller: ManifestPoller
  /** The swarm process, from a download until the end of its seed windows. */
  #swarm: Swarm | undefined
  #swarmClosing: Promise<void> | undefined
  /** Set while a swarm process started early (a release is being uploaded) stays open unused. */
  #earlyStartWindow: NodeJS.Timeout | undefined
  #task: ScheduledTask | undefined
  #running: Promise<ReconcileResult> | undefined
  #again = false
  readonly #stopping = new AbortController()
  readonly #trustedKeys: KeyObject[]
  readonly #identity: HostIdentity
  #reporter: Reporter | undefined
  #metrics: AgentMetrics = noMetrics
  #metricsServer: Server | undefined
  #unlock: (() => Promise<void>) | undefined
  #pollFailures = 0
  #nextPollAt = 0
  readonly #warnedUnsigned = new Set<string>()

  constructor(config: AgentConfig, log: Logger) {
    this.#config = config
    this.#log = log
    this.#state = new StateFile(config.state_dir)
    this.#trustedKeys = config.trusted_keys.map((k) => parsePublicKey(k)!)
    this.#identity = { host: config.host_id, groups: config.groups }
    this.#poller = new ManifestPoller(`${config.server}/manifest`, { timeoutMs: config.request_timeout, maxBytes: MAX_MANIFEST_BYTES })
  }

  /** Loads state, checks the torrent port is free, and serves metrics when configured. */
  async init(): Promise<void> {
    await mkdir(this.#config.state_dir, { recursive: true })
    this.#unlock = await lockStateDir(this.#config.state_dir)
    try {
      await this.#open()
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async #open(): Promise<void> {
    await this.#state.load()
    // The swarm client listens only during deploys; a port taken by another process is still a start-up
    // error (exit 2) rather than a failed deploy later.
    await checkPortFree(this.#config.torrent_port)
    if (this.#config.metrics_listen) {
      const { host, port } = this.#config.metrics_listen
      ;({ metrics: this.#metrics, server: this.#metricsServer } = await serveMetrics(host, port))
      this.#log.info({ metrics: `${host}:${(this.#metricsServer.address() as AddressInfo).port}` }, 'metrics listening')
    }
    if (this.#config.report) {
      this.#reporter = new Reporter({
        url: `${this.#config.server}/api/v1/reports`,
        host: this.#config.host_id,
        groups: this.#config.groups,
        token: this.#config.report_token,
        timeoutMs: this.#config.request_timeout,
        heartbeatMs: this.#config.report_interval,
        log: this.#log,
      })
    }
    this.#log.info({ server: this.#config.server, torrent_port: this.#config.torrent_port, apps: this.#config.apps.map((a) => a.name) }, 'agent started')
  }

  /** Reconciles now, then on the cron schedule and whenever the long-poll sees the manifest change. */
  start(): void {
    void this.reconcile(this.#config.seed_window)
    if (this.#config.long_poll > 0) {
      void watchManifest({
        url: this.#poller.url,
        longPollMs: this.#config.long_poll,
        requestTimeoutMs: this.#config.request_timeout,
        maxBytes: MAX_MANIFEST_BYTES,
        backoffMs: this.#config.retry_backoff,
        signal: this.#stopping.signal,
        onChange: (body, etag) => {
          this.#poller.offer(body, etag)
          void this.reconcile(this.#config.seed_window)
        },
        onPublishing: (upload) => this.#startSwarmEarly(upload),
      })
    }
    // node-cron writes coloured lines of its own to stdout, which would break the JSON log. A skipped or
    // overlapping tick is harmless here (runs never overlap; the long-poll and the next tick follow).
    cron.setLogger({
      info: (message) => this.#log.debug({ cron: message }, 'scheduler'),
      warn: (message) => this.#log.debug({ cron: message }, 'scheduler'),
      error: (message) => this.#log.error({ cron: String(message) }, 'scheduler error'),
      debug: () => {},
    })
    this.#task = cron.schedule(this.#config.schedule, () => this.reconcile(this.#config.seed_window).then(() => undefined), {
      name: 'rookery-poll',
      noOverlap: true,
      ...(this.#config.jitter > 0 ? { maxRandomDelay: this.#config.jitter } : {}),
    })
  }

  /**
   * One reconcile pass. A pass already running is joined instead of starting a second one, and another
   * pass follows it: the manifest may have changed after the running pass read it.
   */
  reconcile(seedWindowMs: number): Promise<ReconcileResult> {
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    this.#running = this.#reconcile(seedWindowMs).finally(() => {
      this.#running = undefined
      if (this.#again && !this.#stopping.signal.aborted) {
        this.#again = false
        void this.reconcile(seedWindowMs)
      } else {
        this.#closeSwarmIfIdle()
      }
    })
    return this.#running
  }

  async stop(): Promise<void> {
    this.#stopping.abort()
    this.#reporter?.stop()
    this.#metricsServer?.close()
    await this.#task?.destroy()
    clearTimeout(this.#earlyStartWindow)
    await this.#running?.catch(() => undefined)
    const swarm = this.#swarm
    this.#swarm = undefined
    await swarm?.close()
    await this.#swarmClosing
    await this.#unlock?.()
  }

  async #reconcile(seedWindowMs: number): Promise<ReconcileResult> {
    if (Date.now() < this.#nextPollAt) {
      return { converged: false, apps: [], error: new RookeryError('ROOKERY_BACKING_OFF', 'backing off after failed polls') }
    }
    let manifest: Manifest
    let changed: boolean
    try {
      ;({ manifest, changed } = await this.#poller.poll())
      this.#pollFailures = 0
      this.#metrics.polled()
    } catch (err) {
      const error = err instanceof RookeryError ? err : new RookeryError('ROOKERY_POLL', describeError(err), { cause: err })
      this.#metrics.failed('', error.code)
      // A server in trouble is not helped by a fleet polling it every few seconds: back off.
      this.#pollFailures++
      const delay = retryDelayMs(this.#pollFailures, this.#config.retry_backoff)
      this.#nextPollAt = Date.now() + delay
      this.#log.warn({ code: error.code, err: describeError(error), failures: this.#pollFailures, next_poll_in_ms: delay }, 'manifest poll failed; keeping current releases')
      return { converged: false, apps: [], error }
    }
    if (changed) this.#log.info({ serial: manifest.serial }, 'manifest changed')
    const ctx: DeployContext = {
      config: this.#config,
      state: this.#state,
      log: this.#log,
      seedWindowMs,
      signal: this.#stopping.signal,
      report: (app, fields) => this.#reporter?.send(app, fields),
      metrics: this.#metrics,
    }
    const apps: AppOutcome[] = []
    for (const app of this.#config.apps) apps.push(await this.#reconcileApp(ctx, app, manifest))
    await this.#cleanDownloads(manifest)
    return { converged: apps.every((a) => a.desired !== null && a.current === a.desired), apps }
  }

  async #reconcileApp(ctx: DeployContext, app: AppConfig, manifest: Manifest): Promise<AppOutcome> {
    const layout = new AppLayout(app.deploy_to)
    const desired = desiredRelease(manifest, app.name, this.#identity)
    const state = this.#state.app(app.name)
    const action = planApp({
      desired,
      current: await layout.currentTag(),
      installed: new Set(await layout.installedTags()),
      failures: state.failures,
      activating: state.activating?.tag,
      now: new Date(),
    })
    const outcome = async (error?: string): Promise<AppOutcome> => {
      const now = await layout.currentTag()
      this.#metrics.setCurrent(app.name, now)
      return { app: app.name, desired: desired?.tag ?? null, current: now, action: action.kind, ...(error ? { error } : {}) }
    }
    const current = await layout.currentTag()
    if (action.kind === 'none') {
      this.#reporter?.sendIfChanged(app.name, { tag: current, current, phase: desired ? 'activated' : 'idle' })
      return outcome()
    }
    if (action.kind === 'skip') {
      this.#log.debug({ app: app.name, reason: action.reason }, 'skipping')
      this.#reporter?.sendIfChanged(app.name, { tag: action.release.tag, current, phase: 'failed', error: action.reason })
      return outcome(action.reason)
    }
    try {
      this.#checkSignature(app.name, action.release)
      if (action.kind === 'install') {
        // An early start has done its job; the seed window keeps the swarm now.
        clearTimeout(this.#earlyStartWindow)
        this.#earlyStartWindow = undefined
        const [{ installRelease }, swarm] = await Promise.all([import('./install.ts'), this.#openSwarm()])
        await installRelease(ctx, swarm, app, action.release)
      } else {
        await activateRelease(ctx, app, action.release.tag)
      }
      return outcome()
    } catch (err) {
      const permanent = isPermanent(err)
      const code = err instanceof RookeryError ? err.code : 'ROOKERY_UNEXPECTED'
      const previous = state.failures[action.release.tag]
      const attempts = (previous?.sha256 === action.release.sha256 ? previous.attempts : 0) + 1
      const now = Date.now()
      await this.#state.saveApp(app.name, {
        ...this.#state.app(app.name),
        failures: {
          ...this.#state.app(app.name).failures,
          [action.release.tag]: {
            sha256: action.release.sha256,
            code,
            reason: describeError(err),
            permanent,
            attempts,
            at: new Date(now).toISOString(),
            ...(permanent ? {} : { retry_after: new Date(now + retryDelayMs(attempts, this.#config.retry_backoff)).toISOString() }),
          },
        },
      })
      this.#log.error({ app: app.name, tag: action.release.tag, code, permanent, attempts, err: describeError(err) }, `deploy failed`)
      this.#metrics.failed(app.name, code)
      // A failed hook was reported with its output already.
      if (code !== 'ROOKERY_HOOK_FAILED') this.#reporter?.send(app.name, { tag: action.release.tag, current: await layout.currentTag(), phase: 'failed', error: describeError(err) })
      return outcome(describeError(err))
    }
  }

  /**
   * The swarm process, or a new one (after the previous one finished closing: same port). A new one is
   * still starting: its `install` waits for it.
   */
  async #openSwarm(): Promise<Swarm> {
    await this.#swarmClosing
    const { openSwarm } = await import('./swarm.ts')
    if (!this.#swarm) {
      const swarm: Swarm = openSwarm({
        torrentPort: this.#config.torrent_port,
        requestPipelineSeconds: this.#config.request_pipeline / 1000,
        log: this.#log,
        onSeedOver: (app, _tag, bytes) => {
          this.#metrics.uploaded(app, bytes)
          this.#closeSwarmIfIdle()
        },
        onExit: () => {
          if (this.#swarm === swarm) this.#swarm = undefined
        },
      })
      this.#swarm = swarm
    }
    return this.#swarm
  }

  /**
   * A release is being uploaded: if this host will deploy it (one of its apps; not pinned; in the cohort of
   * a rollout), starts the swarm process now, so that it is listening when the release is published (its
   * start is most of a deploy's delay, more so on a busy host), and keeps it for `early_swarm_start` if no
   * deploy comes.
   */
  #startSwarmEarly(upload: Publishing): void {
    const window = this.#config.early_swarm_start
    if (window === 0 || !this.#config.apps.some((a) => a.name === upload.app) || this.#stopping.signal.aborted) return
    if (!willDeploy(this.#poller.last, upload, this.#identity)) {
      this.#log.debug({ app: upload.app, rollout: upload.rollout }, 'a release is being published, not for this host')
      return
    }
    this.#log.info({ app: upload.app, swarm_running: this.#swarm !== undefined }, 'a release is being published: starting the swarm process')
    clearTimeout(this.#earlyStartWindow)
    this.#earlyStartWindow = setTimeout(() => {
      this.#earlyStartWindow = undefined
      this.#closeSwarmIfIdle()
    }, window)
    this.#openSwarm().catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'starting the swarm process failed'))
  }

  /**
   * Closes the swarm process when nothing uses it: no pass running (it may be about to download), no
   * torrent in its seed window, and not started early for a release still uploading. Called when a pass
   * ends, when a seed window ends, and when an early start's window ends.
   */
  #closeSwarmIfIdle(): void {
    const swarm = this.#swarm
    if (!swarm || this.#running || swarm.dirs.length > 0 || this.#earlyStartWindow || this.#stopping.signal.aborted) return
    this.#swarm = undefined
    this.#swarmClosing = swarm.close().catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'closing the swarm process failed'))
  }

  /** Refuses a release not signed by a trusted key; without trusted keys, warns once per release. */
  #checkSignature(app: string, release: ReleaseEntry): void {
    if (this.#trustedKeys.length > 0) {
      verifyRelease({ app, tag: release.tag, sha256: release.sha256, infohash: release.infohash, size: release.size }, release.signature, this.#trustedKeys)
    } else if (!this.#warnedUnsigned.has(`${app}/${release.tag}`)) {
      this.#warnedUnsigned.add(`${app}/${release.tag}`)
      this.#log.warn({ app, tag: release.tag }, 'no trusted_keys configured: release signatures are not checked')
    }
  }

  /** Deletes downloads no app wants any more (a partial download of the wanted release is kept to resume). */
  async #cleanDownloads(manifest: Manifest): Promise<void> {
    const root = join(this.#config.state_dir, 'downloads')
    const keep = new Set([
      ...(this.#swarm?.dirs ?? []),
      ...this.#config.apps.map((a) => join(root, desiredRelease(manifest, a.name, this.#identity)?.infohash ?? '-')),
    ])
    let entries: string[]
    try {
      entries = await readdir(root)
    } catch {
      return
    }
    for (const entry of entries) {
      const dir = join(root, entry)
      if (!keep.has(dir)) await rm(dir, { recursive: true, force: true })
    }
  }
}

/**
 * Fails (exit 2) when another process listens on the torrent port, the way the swarm client would. Port
 * 0 (any free port) needs no check.
 */
async function checkPortFree(port: number): Promise<void> {
  if (port === 0) return
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RookeryError('ROOKERY_LISTEN', `cannot listen for peers on TCP port ${port}: ${err.code ?? err.message}`, {
        exitCode: ExitCode.usage,
        hint: 'another process uses it (a server and an agent on one host need different torrent_port values)',
      })),
    )
    server.listen(port, () => resolve())
  })
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
