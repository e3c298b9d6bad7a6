import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../log.ts'
import { formatPublishing } from '../manifest/manifest.ts'
import { ExitCode, RookeryError } from '../errors.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../swarm/client.ts'
import type { ServerConfig } from './config.ts'
import { HttpError, sendError } from './http-util.ts'
import { OriginSeeder } from './origin-seeder.ts'
import { answerUnchangedManifest, route, type RouteContext } from './routes.ts'
import { ReleaseStore } from './store.ts'
import { Tracker } from './tracker.ts'
import { installFastManifest } from './fast-manifest.ts'
import { ManifestWaiters } from './long-poll.ts'
import { ReportStore } from './reports.ts'
import { ServerMetrics } from './metrics.ts'

export interface RunningServer {
  /** Base URL it listens on (the bound address, not public_url). */
  url: string
  port: number
  torrentPort: number
  store: ReleaseStore
  close(): Promise<void>
}

/** Starts `rookery server`: loads data_dir, starts the origin seeder, then listens. */
export async function startServer(config: ServerConfig, log: Logger, version: string): Promise<RunningServer> {
  const store = new ReleaseStore(config.data_dir)
  await store.open()
  const published = new Set<string>()
  const refreshPublished = () => {
    published.clear()
    for (const app of Object.values(store.manifest.apps)) for (const r of app.releases) published.add(r.infohash)
  }
  refreshPublished()
  store.on('change', refreshPublished)

  const tracker = new Tracker({
    intervalMs: config.announce_interval,
    maxPeersPerSwarm: config.max_peers_per_swarm,
    isPublished: (infoHash) => published.has(infoHash),
    log,
  })
  const client = createSwarmClient({ torrentPort: config.torrent_port, uploadLimit: config.origin_upload_limit })
  client.on('error', (err: Error) => log.error({ err: err.message }, 'origin seeder error'))
  await whenListening(client, config.torrent_port)
  const seeder = new OriginSeeder(client, store, log)

  const waiters = new ManifestWaiters()
  store.on('change', () => waiters.release())
  const ctx: RouteContext = {
    store,
    seeder,
    tracker,
    waiters,
    tokens: config.publish_tokens,
    publicUrl: config.public_url,
    announceUrl: config.announce_url ?? `${config.public_url}/announce`,
    keepReleases: config.keep_releases,
    maxUploadSize: config.max_upload_size,
    uploading: new Set(),
    announceUpload: (upload) => waiters.publishing(formatPublishing(upload)),
    reports: new ReportStore({ maxHosts: config.max_hosts, forgetAfterMs: config.forget_after }),
    agentTokens: config.agent_tokens,
    staleAfterMs: config.stale_after,
    metrics: new ServerMetrics(),
    version,
    log,
  }
  ctx.metrics.observe(ctx)
  const http = createServer((req, res) => {
    if (answerUnchangedManifest(req, res, ctx)) return
    route(req, res, ctx).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err.status, err.code, err.message)
      log.error({ err: (err as Error).message, url: req.url, method: req.method }, 'request failed')
      sendError(res, 500, 'ROOKERY_INTERNAL', (err as Error).message)
    })
  })
  // Uploads of large tarballs take long: no overall request timeout, but headers must arrive promptly.
  http.requestTimeout = 0
  http.headersTimeout = 30_000
  http.keepAliveTimeout = 65_000
  // Unchanged-manifest polls on keep-alive connections are answered before node:http's parser (fast-manifest.ts).
  const front = installFastManifest(http, {
    etag: () => store.document.etag,
    answered: () => ctx.metrics.manifestNotModified.inc(),
  })

  await listen(http, config.listen.host, config.listen.port)
  const port = (http.address() as AddressInfo).port
  // Seeding starts after listening: the seeder announces to our own tracker.
  await seeder.start()
  log.info({ listen: `${config.listen.host}:${port}`, public_url: config.public_url, torrent_port: client.torrentPort, data_dir: config.data_dir }, 'server started')

  return {
    url: `http://${config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host}:${port}`,
    port,
    torrentPort: client.torrentPort,
    store,
    async close() {
      waiters.close()
      await new Promise<void>((resolve) => {
        http.close(() => resolve())
        http.closeAllConnections()
        // Connections still on the fast path are not node:http's to close, and close() waits for them.
        front.destroyAll()
      })
      await tracker.close()
      await destroySwarmClient(client)
    },
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RookeryError('ROOKERY_LISTEN', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { exitCode: ExitCode.usage, hint: 'change `listen` in the server config, or stop what uses the port' })),
    )
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
