import { createHash } from 'node:crypto'
import { isSafeName } from '../release/names.ts'
import * as z from '../zod.ts'

/**
 * The manifest: one JSON document saying, per app, which tag is current and which releases are kept.
 * The server writes it; agents read it. It is self-contained (absolute URLs) so the same bytes could be
 * served by nginx or S3.
 */

/** Bumped only for incompatible changes; agents refuse versions they do not know. */
export const MANIFEST_VERSION = 1

const name = z.string().check(z.refine(isSafeName, { message: 'not a safe name' }))
const hex = (length: number) => z.string().check(z.regex(new RegExp(`^[0-9a-f]{${length}}$`)))

export const releaseEntrySchema = z.object({
  tag: name,
  infohash: hex(40),
  sha256: hex(64),
  size: z.int().check(z.nonnegative()),
  created_at: z.string(),
  torrent_url: z.string(),
  tarball_url: z.string(),
  /** Ed25519 signature by the publisher (`publish --sign`), checked by agents with trusted_keys. */
  signature: z.optional(z.object({ key_id: hex(16), signed_at: z.string(), value: z.string().check(z.maxLength(200)) })),
})

const groupName = z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/))

export const appEntrySchema = z.object({
  /** The tag every host runs unless a rollout or a pin says otherwise. */
  current: z.nullable(name),
  releases: z.array(releaseEntrySchema),
  /** A staged rollout: `tag` goes to a share of hosts and/or named groups; `promote` makes it current. */
  rollout: z.optional(
    z.object({ tag: name, percent: z.optional(z.number().check(z.minimum(0), z.maximum(100))), groups: z.optional(z.array(groupName)) }),
  ),
  /** Hosts or groups held on a tag (paused) whatever current and rollout say. */
  pins: z.optional(z.array(z.object({ host: z.optional(z.string().check(z.minLength(1), z.maxLength(255))), group: z.optional(groupName), tag: name }))),
})

export const manifestSchema = z.object({
  version: z.literal(MANIFEST_VERSION),
  /** Increases with every change, so a reader can tell a newer document from an older cached one. */
  serial: z.int().check(z.nonnegative()),
  updated_at: z.string(),
  apps: z.record(name, appEntrySchema),
})

export type ReleaseEntry = z.infer<typeof releaseEntrySchema>
export type AppEntry = z.infer<typeof appEntrySchema>
export type Manifest = z.infer<typeof manifestSchema>

/** A manifest with no apps yet. */
export function emptyManifest(): Manifest {
  return { version: MANIFEST_VERSION, serial: 0, updated_at: new Date(0).toISOString(), apps: {} }
}

/** Canonical bytes of a manifest (stable key order from construction, 2-space indent, final newline). */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)
}

/** Strong ETag of manifest bytes: equal bytes give equal tags, on any server that serves them. */
export function manifestEtag(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`
}

/** Where a release's files live under the server's public URL; shared by the server and `publish`. */
export function releaseUrls(publicUrl: string, app: string, tag: string, tarball: string) {
  const base = publicUrl.replace(/\/+$/, '')
  return {
    torrent: `${base}/torrents/${encodeURIComponent(app)}/${encodeURIComponent(tag)}.torrent`,
    tarball: `${base}/releases/${encodeURIComponent(app)}/${encodeURIComponent(tag)}/${encodeURIComponent(tarball)}`,
  }
}

/**
 * Header on a long-poll answer (`/manifest?wait=`) sent when a publish upload started: the release is on
 * its way, and the hosts that will deploy it can get ready (start their swarm process) before it is in the
 * manifest. Its value: the app, then the rollout's cohort when the upload starts one
 * (`web`, `web; percent=10`, `web; groups=canary,blue`).
 */
export const PUBLISHING_HEADER = 'x-rookery-publishing'

/** Who a release being uploaded is for: every host of the app, or a rollout's cohort. */
export interface Publishing {
  app: string
  rollout?: { percent?: number; groups?: string[] }
}

export function formatPublishing({ app, rollout }: Publishing): string {
  const parts = [app]
  if (rollout?.percent !== undefined) parts.push(`percent=${rollout.percent}`)
  if (rollout?.groups?.length) parts.push(`groups=${rollout.groups.join(',')}`)
  return parts.join('; ')
}

/** The header's value, or undefined when it is not one formatPublishing makes. */
export function parsePublishing(value: string): Publishing | undefined {
  const [app, ...params] = value.split(';').map((p) => p.trim())
  if (!app || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(app)) return undefined
  const rollout: NonNullable<Publishing['rollout']> = {}
  for (const param of params) {
    const [key, text = ''] = param.split('=', 2)
    if (key === 'percent' && /^\d+(\.\d+)?$/.test(text) && Number(text) <= 100) rollout.percent = Number(text)
    else if (key === 'groups' && text) rollout.groups = text.split(',')
    else return undefined
  }
  return params.length ? { app, rollout } : { app }
}
