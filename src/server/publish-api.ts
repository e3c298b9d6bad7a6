import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from '../log.ts'
import { addRelease, setCurrent, setRollout, type Rollout } from '../manifest/changes.ts'
import { releaseUrls, type Publishing, type ReleaseEntry } from '../manifest/manifest.ts'
import { tarballName } from '../release/names.ts'
import { makeTorrent } from '../release/torrent.ts'
import { HttpError, readSmallBody, sendJson } from './http-util.ts'
import type { OriginSeeder } from './origin-seeder.ts'
import type { ReleaseStore } from './store.ts'
import type { ServerMetrics } from './metrics.ts'

export interface PublishContext {
  store: ReleaseStore
  seeder: OriginSeeder
  publicUrl: string
  /** Tracker URL written into torrents. */
  announceUrl: string
  keepReleases: number
  maxUploadSize: number
  /** app/tag pairs being uploaded now: a second upload of the same tag must not race the first on disk. */
  uploading: Set<string>
  /** A release that becomes current, or starts a rollout, started uploading (long-polling hosts get ready). */
  announceUpload: (upload: Publishing) => void
  metrics: ServerMetrics
  log: Logger
}

/** Headers of `PUT /api/v1/releases/<app>/<tag>`, the publish upload. */
export const PUBLISH_HEADERS = {
  sha256: 'x-rookery-sha256',
  infohash: 'x-rookery-infohash',
  /** `<key_id> <signed_at> <base64 signature>`, from `publish --sign`. */
  signature: 'x-rookery-signature',
} as const

/**
 * `PUT /api/v1/releases/<app>/<tag>[?activate=false]` with the tarball as body and its SHA-256 in a
 * header. The server checks the SHA-256 while writing, builds the torrent itself with the same
 * deterministic settings as the CLI (refusing a different infohash), then adds the release to the
 * manifest. The same tag with the same content is a no-op; with other content it is refused (409).
 */
export async function handleUpload(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: PublishContext,
  app: string,
  tag: string,
  activate: boolean,
  rollout?: Omit<Rollout, 'tag'>,
): Promise<void> {
  const sha256 = String(req.headers[PUBLISH_HEADERS.sha256] ?? '').toLowerCase()
  const claimedInfohash = req.headers[PUBLISH_HEADERS.infohash]
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new HttpError(400, 'ROOKERY_BAD_REQUEST', `header ${PUBLISH_HEADERS.sha256} must be the tarball's hex SHA-256`)
  }
  const signature = parseSignatureHeader(req.headers[PUBLISH_HEADERS.signature])
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > ctx.maxUploadSize) {
    throw new HttpError(413, 'ROOKERY_TOO_LARGE', `tarball of ${declared} bytes is over max_upload_size (${ctx.maxUploadSize})`)
  }

  const existing = ctx.store.findRelease(app, tag)
  if (existing) {
    req.resume() // the body is not needed: answer from what is already published
    if (existing.sha256 !== sha256) {
      throw new HttpError(409, 'ROOKERY_TAG_EXISTS', `${app} ${tag} is already published with other content (sha256 ${existing.sha256}): publish a new tag`)
    }
    if (rollout) {
      await ctx.store.update((m) => ({ manifest: setRollout(m, app, { tag, ...rollout }, new Date()), removed: [] }))
    } else if (activate && ctx.store.manifest.apps[app]?.current !== tag) {
      await ctx.store.update((m) => ({ manifest: setCurrent(m, app, tag, new Date()), removed: [] }))
    }
    return sendJson(res, 200, { app, created: false, current: ctx.store.manifest.apps[app]?.current, rollout: ctx.store.manifest.apps[app]?.rollout ?? null, release: existing })
  }

  const key = `${app}/${tag}`
  if (ctx.uploading.has(key)) {
    req.resume()
    throw new HttpError(409, 'ROOKERY_PUBLISH_IN_PROGRESS', `${app} ${tag} is being published by another request: wait for it, then retry`)
  }
  ctx.uploading.add(key)
  // Not for --no-activate: no host deploys it until someone makes it current.
  if (activate) ctx.announceUpload({ app, ...(rollout ? { rollout } : {}) })
  const incoming = ctx.store.incomingPath()
  try {
    const { size, digest } = await receiveTarball(req, incoming, ctx.maxUploadSize)
    if (digest !== sha256) {
      throw new HttpError(422, 'ROOKERY_CHECKSUM_MISMATCH', `received tarball has sha256 ${digest}, the publisher declared ${sha256}`)
    }
    const name = tarballName(app, tag)
    const urls = releaseUrls(ctx.publicUrl, app, tag, name)
    const torrent = await makeTorrent(incoming, { name, announce: ctx.announceUrl, webseed: urls.tarball })
    if (claimedInfohash !== undefined && claimedInfohash !== torrent.infoHash) {
      throw new HttpError(422, 'ROOKERY_INFOHASH_MISMATCH', `server computed infohash ${torrent.infoHash}, the publisher declared ${String(claimedInfohash)}: are both on the same rookery version?`)
    }
    const dir = ctx.store.releaseDir(app, tag)
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    await writeFile(ctx.store.torrentPath(app, tag), torrent.torrent)
    await rename(incoming, ctx.store.tarballPath(app, tag))

    const entry: ReleaseEntry = {
      tag,
      infohash: torrent.infoHash,
      sha256,
      size,
      created_at: new Date().toISOString(),
      torrent_url: urls.torrent,
      tarball_url: urls.tarball,
      ...(signature ? { signature } : {}),
    }
    await ctx.store.update((m) => addRelease(m, app, entry, { activate, keep: ctx.keepReleases, now: new Date(), ...(rollout ? { rollout } : {}) }))
    await ctx.seeder.add(app, tag)
    ctx.log.info({ app, tag, sha256, infohash: entry.infohash, size, activate }, 'release published')
    ctx.metrics.publishes.inc({ app })
    sendJson(res, 201, { app, created: true, current: ctx.store.manifest.apps[app]?.current, rollout: ctx.store.manifest.apps[app]?.rollout ?? null, release: entry })
  } finally {
    ctx.uploading.delete(key)
    await rm(incoming, { force: true })
  }
}


/** `POST /api/v1/apps/<app>/current` with `{"tag": "v41"}`: points current at a kept release (rollback). */
export async function handleSetCurrent(req: IncomingMessage, res: ServerResponse, ctx: PublishContext, app: string): Promise<void> {
  const body = await readSmallBody(req)
  let tag: unknown
  try {
    tag = (JSON.parse(body.toString('utf8')) as { tag?: unknown }).tag
  } catch {
    throw new HttpError(400, 'ROOKERY_BAD_REQUEST', 'body must be JSON like {"tag": "v41"}')
  }
  if (typeof tag !== 'string') throw new HttpError(400, 'ROOKERY_BAD_REQUEST', 'body must be JSON like {"tag": "v41"}')
  const appEntry = ctx.store.manifest.apps[app]
  if (!appEntry) throw new HttpError(404, 'ROOKERY_UNKNOWN_APP', `app ${app} has no releases on this server`)
  if (!ctx.store.findRelease(app, tag)) {
    const kept = appEntry.releases.map((r) => r.tag).join(', ')
    throw new HttpError(404, 'ROOKERY_UNKNOWN_TAG', `${app} has no kept release ${tag} (kept: ${kept})`)
  }
  const previous = appEntry.current
  if (previous !== tag) await ctx.store.update((m) => ({ manifest: setCurrent(m, app, tag, new Date()), removed: [] }))
  ctx.log.info({ app, tag, previous }, 'current changed')
  sendJson(res, 200, { app, previous, current: tag })
}

/** The optional signature header; the server stores it as is (agents verify it against their keys). */
function parseSignatureHeader(header: string | string[] | undefined): ReleaseEntry['signature'] {
  if (header === undefined) return undefined
  const m = /^([0-9a-f]{16}) (\S+) ([A-Za-z0-9+/=]{1,200})$/.exec(String(header))
  if (!m || Number.isNaN(Date.parse(m[2]!))) {
    throw new HttpError(400, 'ROOKERY_BAD_REQUEST', `header ${PUBLISH_HEADERS.signature} must be "<key_id> <signed_at> <base64>"`)
  }
  return { key_id: m[1]!, signed_at: m[2]!, value: m[3]! }
}

/** Streams the body to `path`, hashing as it goes and refusing more than `limit` bytes. */
async function receiveTarball(req: IncomingMessage, path: string, limit: number): Promise<{ size: number; digest: string }> {
  const hash = createHash('sha256')
  let size = 0
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length
      if (size > limit) return callback(new HttpError(413, 'ROOKERY_TOO_LARGE', `tarball over max_upload_size (${limit} bytes)`))
      hash.update(chunk)
      callback(null, chunk)
    },
  })
  await pipeline(req, meter, createWriteStream(path, { flags: 'wx' }))
  return { size, digest: hash.digest('hex') }
}
