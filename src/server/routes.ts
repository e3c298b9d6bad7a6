import type { IncomingMessage, ServerResponse } from 'node:http'
import send from 'send'
import { PUBLISHING_HEADER } from '../manifest/manifest.ts'
import { isSafeName, tarballName } from '../release/names.ts'
import { isAuthorized } from './auth.ts'
import { HttpError, sendError, sendJson } from './http-util.ts'
import { handleSetCurrent, handleUpload, type PublishContext } from './publish-api.ts'
import { handleRolloutCommand } from './rollout-api.ts'
import { handleReport, handleStatus, type StatusContext } from './status-api.ts'
import { serveStatusPage } from './status-page.ts'
import { serveMetrics, type ServerMetrics } from './metrics.ts'
import type { Tracker } from './tracker.ts'
import { MAX_WAIT_MS, type ManifestWaiters } from './long-poll.ts'
import { readFile } from 'node:fs/promises'

export interface RouteContext extends PublishContext, StatusContext {
  tracker: Tracker
  waiters: ManifestWaiters
  tokens: readonly string[]
  version: string
  metrics: ServerMetrics
}

/**
 * Every route of the server, on one port:
 *   GET  /announce, /scrape                    BitTorrent tracker
 *   GET  /manifest                             the manifest (strong ETag, 304 on If-None-Match)
 *   GET  /torrents/<app>/<tag>.torrent         .torrent files
 *   GET  /releases/<app>/<tag>/<app>-<tag>.tar.gz   webseed (BEP 19; Range requests)
 *   PUT  /api/v1/releases/<app>/<tag>          publish (token)
 *   POST /api/v1/apps/<app>/current            rollback / roll forward (token)
 *   GET  /api/v1/info, /api/v1/stats, /healthz
 */
/**
 * The hot path: an agent polling an unchanged manifest, thousands of times a minute in a large fleet.
 * Answered with a 304 before any URL parsing, with a prebuilt header list; true when it answered. Any
 * other request (a query string, a changed manifest) goes through `route`.
 */
export function answerUnchangedManifest(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): boolean {
  if (req.url !== '/manifest' || (req.method !== 'GET' && req.method !== 'HEAD')) return false
  const { etag } = ctx.store.document
  const header = req.headers['if-none-match']
  if (header !== etag && !ifNoneMatch(header, etag)) return false
  ctx.metrics.manifestNotModified.inc()
  res.writeHead(304, ['ETag', etag, 'Cache-Control', 'no-cache'])
  res.end()
  return true
}

export async function route(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://rookery')
  const parts = url.pathname.split('/').slice(1).map(safeDecode)
  const method = req.method ?? 'GET'
  const read = method === 'GET' || method === 'HEAD'

  if (read && (url.pathname === '/announce' || url.pathname === '/scrape')) {
    return ctx.tracker.handle(req, res, url.pathname === '/announce' ? 'announce' : 'scrape')
  }
  if (read && url.pathname === '/manifest') return serveManifest(req, res, ctx, waitMs(url))
  if (read && parts[0] === 'torrents' && parts.length === 3) {
    const [, app, file] = parts as [string, string, string]
    const tag = file.endsWith('.torrent') ? file.slice(0, -'.torrent'.length) : ''
    return serveTorrent(res, ctx, app, tag, method === 'HEAD')
  }
  if (read && parts[0] === 'releases' && parts.length === 4) {
    const [, app, tag, file] = parts as [string, string, string, string]
    return serveTarball(req, res, ctx, app, tag, file)
  }
  if (read && url.pathname === '/healthz') return sendJson(res, 200, { ok: true })
  if (read && url.pathname === '/api/v1/info') {
    return sendJson(res, 200, { version: ctx.version, public_url: ctx.publicUrl, announce_url: ctx.announceUrl })
  }
  if (read && url.pathname === '/api/v1/stats') {
    return sendJson(res, 200, {
      webseed_bytes: await ctx.metrics.webseedBytesServed(),
      origin_seeder_uploaded_bytes: ctx.seeder.uploaded(),
      swarms: ctx.tracker.swarms(),
    })
  }
  if (method === 'POST' && url.pathname === '/api/v1/reports') return handleReport(req, res, ctx)
  if (read && url.pathname === '/api/v1/status') return handleStatus(res, ctx, url.searchParams.get('app'))
  if (read && url.pathname === '/status') return serveStatusPage(res)
  if (read && url.pathname === '/metrics') return serveMetrics(res, ctx)
  if (parts[0] === 'api' && parts[1] === 'v1') {
    if (!isAuthorized(req, ctx.tokens)) {
      throw new HttpError(401, 'ROOKERY_UNAUTHORIZED', 'missing or wrong publish token (Authorization: Bearer ...)')
    }
    if (method === 'PUT' && parts[2] === 'releases' && parts.length === 5) {
      const app = checkName('app', parts[3]!)
      const tag = checkName('tag', parts[4]!)
      return handleUpload(req, res, ctx, app, tag, url.searchParams.get('activate') !== 'false', rolloutFrom(url))
    }
    if (method === 'POST' && parts[2] === 'apps' && parts.length === 5 && ['rollout', 'promote', 'pin', 'unpin'].includes(parts[4]!)) {
      return handleRolloutCommand(req, res, ctx, checkName('app', parts[3]!), parts[4]!)
    }
    if (method === 'POST' && parts[2] === 'apps' && parts[4] === 'current' && parts.length === 5) {
      return handleSetCurrent(req, res, ctx, checkName('app', parts[3]!))
    }
  }
  sendError(res, 404, 'ROOKERY_NOT_FOUND', `no route ${method} ${url.pathname}`)
}

/**
 * The manifest. With `If-None-Match` of the current ETag the answer is 304, at once, or, with `?wait=S`
 * (long-poll, at most 60 s), when the manifest changes, when an upload starts (a 304 naming the app, and a
 * rollout's cohort, in PUBLISHING_HEADER), or when the wait is over.
 */
function serveManifest(req: IncomingMessage, res: ServerResponse, ctx: RouteContext, wait: number): void {
  const send = (target: ServerResponse, publishing?: string) => {
    const { bytes, etag } = ctx.store.document
    const headers = { ETag: etag, 'Cache-Control': 'no-cache', ...(publishing ? { [PUBLISHING_HEADER]: publishing } : {}) }
    const notModified = ifNoneMatch(req.headers['if-none-match'], etag)
    ctx.metrics.manifestRequests.inc({ status: notModified ? '304' : '200' })
    if (notModified) {
      target.writeHead(304, headers)
      return void target.end()
    }
    target.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': bytes.length })
    target.end(req.method === 'HEAD' ? undefined : bytes)
  }
  if (wait > 0 && ifNoneMatch(req.headers['if-none-match'], ctx.store.document.etag)) return ctx.waiters.hold(res, wait, send)
  send(res)
}

function waitMs(url: URL): number {
  const seconds = Number(url.searchParams.get('wait') ?? 0)
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_WAIT_MS) : 0
}

async function serveTorrent(res: ServerResponse, ctx: RouteContext, app: string, tag: string, head: boolean): Promise<void> {
  if (!isSafeName(app) || !isSafeName(tag) || !ctx.store.findRelease(app, tag)) {
    return sendError(res, 404, 'ROOKERY_NOT_FOUND', `no release ${app} ${tag}`)
  }
  const bytes = await readFile(ctx.store.torrentPath(app, tag))
  res.writeHead(200, { 'Content-Type': 'application/x-bittorrent', 'Content-Length': bytes.length, 'Cache-Control': 'public, max-age=31536000, immutable' })
  res.end(head ? undefined : bytes)
}

function serveTarball(req: IncomingMessage, res: ServerResponse, ctx: RouteContext, app: string, tag: string, file: string): void {
  if (!isSafeName(app) || !isSafeName(tag) || file !== tarballName(app, tag) || !ctx.store.findRelease(app, tag)) {
    return sendError(res, 404, 'ROOKERY_NOT_FOUND', `no release ${app} ${tag}`)
  }
  // `send` does Range (206, 416), conditional requests and ETags; a release tarball never changes.
  send(req, `/${app}/${tag}/${file}`, { root: ctx.store.releasesDir, immutable: true, maxAge: '1y' })
    .on('stream', (stream) => stream.on('data', (chunk: Buffer) => ctx.metrics.webseedBytes.inc(chunk.length)))
    .on('error', (err: Error & { status?: number }) => sendError(res, err.status ?? 500, 'ROOKERY_WEBSEED', err.message))
    .pipe(res)
}

function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header.split(',').some((t) => t.trim() === etag || t.trim() === '*')
}

/** `?rollout_percent=10&rollout_group=canary`: publish as a staged rollout instead of making it current. */
function rolloutFrom(url: URL): { percent?: number; groups?: string[] } | undefined {
  const percentText = url.searchParams.get('rollout_percent')
  const groups = url.searchParams.getAll('rollout_group')
  if (percentText === null && groups.length === 0) return undefined
  const percent = Number(percentText)
  if (percentText !== null && !(percent >= 0 && percent <= 100)) throw new HttpError(400, 'ROOKERY_BAD_REQUEST', 'rollout_percent must be 0-100')
  if (groups.some((g) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(g))) throw new HttpError(400, 'ROOKERY_BAD_REQUEST', 'bad rollout_group')
  return { ...(percentText !== null ? { percent } : {}), ...(groups.length ? { groups } : {}) }
}

function checkName(what: string, value: string): string {
  if (!isSafeName(value)) throw new HttpError(400, 'ROOKERY_BAD_NAME', `invalid ${what} ${JSON.stringify(value)}`)
  return value
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    return ''
  }
}
