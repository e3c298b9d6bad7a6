import { readFile, stat } from 'node:fs/promises'
import type WebTorrent from 'webtorrent'
import type { Torrent } from 'webtorrent'
import type { Logger } from '../log.ts'
import { seedTorrent, stopTorrent } from '../swarm/download.ts'
import type { ReleaseStore } from './store.ts'
import type { ManifestChange } from '../manifest/changes.ts'

/**
 * Seeds every kept release from data_dir, so a host that boots long after a publish still finds a
 * source. Pieces are trusted without re-hashing: the server hashed them at publish, and each agent
 * checks every piece and the whole tarball anyway.
 */
export class OriginSeeder {
  readonly #client: WebTorrent
  readonly #store: ReleaseStore
  readonly #log: Logger
  readonly #torrents = new Map<string, Torrent>()

  constructor(client: WebTorrent, store: ReleaseStore, log: Logger) {
    this.#client = client
    this.#store = store
    this.#log = log
    store.on('change', (change: ManifestChange) => {
      for (const { app, tag } of change.removed) void this.remove(app, tag)
    })
  }

  /** Starts seeding every release the manifest keeps. */
  async start(): Promise<void> {
    for (const [app, entry] of Object.entries(this.#store.manifest.apps)) {
      for (const release of entry.releases) await this.add(app, release.tag)
    }
  }

  /** Seeds one kept release; a missing or truncated tarball is logged and skipped, not fatal. */
  async add(app: string, tag: string): Promise<void> {
    const key = `${app}/${tag}`
    if (this.#torrents.has(key)) return
    const release = this.#store.findRelease(app, tag)
    if (!release) return
    try {
      const size = (await stat(this.#store.tarballPath(app, tag))).size
      if (size !== release.size) throw new Error(`tarball is ${size} bytes, manifest says ${release.size}`)
      const torrentFile = await readFile(this.#store.torrentPath(app, tag))
      // When every piece has gone out once, the hosts can finish among themselves: the origin stopped being
      // the bottleneck of this rollout, and the time after it is the swarm's relay tail.
      const onEveryPieceOut = ({ ms }: { ms: number }) =>
        this.#log.info({ app, tag, ms, uploaded: this.#torrents.get(key)?.uploaded ?? null }, 'origin sent every piece once')
      const torrent = await seedTorrent(this.#client, torrentFile, this.#store.releaseDir(app, tag), { skipVerify: true, superSeed: true, onEveryPieceOut })
      this.#torrents.set(key, torrent)
      this.#log.info({ app, tag, infohash: release.infohash }, 'origin seeding')
    } catch (err) {
      this.#log.error({ app, tag, err: (err as Error).message }, 'cannot seed release: agents fall back to peers and the webseed')
    }
  }

  async remove(app: string, tag: string): Promise<void> {
    const torrent = this.#torrents.get(`${app}/${tag}`)
    if (!torrent) return
    this.#torrents.delete(`${app}/${tag}`)
    await stopTorrent(this.#client, torrent)
  }

  /** Bytes uploaded to peers since start. */
  uploaded(): number {
    let total = 0
    for (const torrent of this.#torrents.values()) total += torrent.uploaded
    return total
  }
}
