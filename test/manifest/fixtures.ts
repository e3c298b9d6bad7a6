import { createHash } from 'node:crypto'
import type { Manifest, ReleaseEntry } from '../../src/manifest/manifest.ts'
import { MANIFEST_VERSION, releaseUrls } from '../../src/manifest/manifest.ts'

/** A release entry with hashes derived from the tag (and `content`, so a republished tag can differ). */
export function release(tag: string, content = tag, app = 'web'): ReleaseEntry {
  const urls = releaseUrls('http://rookery.example:8998', app, tag, `${app}-${tag}.tar.gz`)
  return {
    tag,
    infohash: createHash('sha1').update(content).digest('hex'),
    sha256: createHash('sha256').update(content).digest('hex'),
    size: 1000 + tag.length,
    created_at: '2024-01-01T00:00:00.000Z',
    torrent_url: urls.torrent,
    tarball_url: urls.tarball,
  }
}

/** A manifest with one app holding `tags` in order (oldest first) and `current`. */
export function manifestWith(tags: string[], current: string | null, serial = 7): Manifest {
  return {
    version: MANIFEST_VERSION,
    serial,
    updated_at: '2024-01-02T00:00:00.000Z',
    apps: { web: { current, releases: tags.map((t) => release(t)) } },
  }
}
