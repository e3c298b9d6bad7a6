import { EventEmitter } from 'node:events'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { writeFileAtomic } from '../atomic-file.ts'
import { RookeryError } from '../errors.ts'
import { tarballName } from '../release/names.ts'
import {
  emptyManifest,
  manifestEtag,
  manifestSchema,
  serializeManifest,
  type Manifest,
  type ReleaseEntry,
} from '../manifest/manifest.ts'
import type { ManifestChange } from '../manifest/changes.ts'

/**
 * The server's state on disk, in data_dir:
 *   manifest.json                              the published document (the source of truth)
 *   releases/<app>/<tag>/<app>-<tag>.tar.gz    kept tarballs, served by the webseed and the origin seeder
 *   releases/<app>/<tag>/<app>-<tag>.torrent
 *   incoming/                                  uploads in progress; emptied at start
 * Changes to the manifest are serialized, saved atomically, and only then announced with 'change'.
 */
export class ReleaseStore extends EventEmitter {
  readonly dataDir: string
  readonly releasesDir: string
  readonly incomingDir: string
  #manifest: Manifest = emptyManifest()
  #bytes: Buffer = serializeManifest(this.#manifest)
  #etag: string = manifestEtag(this.#bytes)
  #queue: Promise<unknown> = Promise.resolve()

  constructor(dataDir: string) {
    super()
    this.dataDir = dataDir
    this.releasesDir = join(dataDir, 'releases')
    this.incomingDir = join(dataDir, 'incoming')
  }

  /** Creates the layout and loads manifest.json, refusing one that does not parse. */
  async open(): Promise<void> {
    await mkdir(this.releasesDir, { recursive: true })
    await rm(this.incomingDir, { recursive: true, force: true })
    await mkdir(this.incomingDir, { recursive: true })
    let text: string | undefined
    try {
      text = await readFile(this.manifestPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (text !== undefined) {
      const parsed = manifestSchema.safeParse(safeJson(text))
      if (!parsed.success) {
        throw new RookeryError('ROOKERY_BAD_STATE', `${this.manifestPath} is not a valid manifest: ${parsed.error.issues[0]?.message}`, {
          hint: 'restore it from a backup, or move it away to start with no releases',
        })
      }
      this.#setManifest(parsed.data)
    }
  }

  get manifestPath(): string {
    return join(this.dataDir, 'manifest.json')
  }

  get manifest(): Manifest {
    return this.#manifest
  }

  /** The exact bytes served at /manifest, and their strong ETag. */
  get document(): { bytes: Buffer; etag: string } {
    return { bytes: this.#bytes, etag: this.#etag }
  }

  findRelease(app: string, tag: string): ReleaseEntry | undefined {
    return this.#manifest.apps[app]?.releases.find((r) => r.tag === tag)
  }

  releaseDir(app: string, tag: string): string {
    return join(this.releasesDir, app, tag)
  }

  tarballPath(app: string, tag: string): string {
    return join(this.releaseDir(app, tag), tarballName(app, tag))
  }

  torrentPath(app: string, tag: string): string {
    return join(this.releaseDir(app, tag), `${app}-${tag}.torrent`)
  }

  /** A fresh path for an upload in progress. */
  incomingPath(): string {
    return join(this.incomingDir, `${randomBytes(8).toString('hex')}.tar.gz`)
  }

  /**
   * Applies a change computed from the current manifest, one at a time, saves it, then deletes the
   * files of releases it dropped. Returns what the change returned.
   */
  update(change: (manifest: Manifest) => ManifestChange): Promise<ManifestChange> {
    const run = this.#queue.then(async () => {
      const result = change(this.#manifest)
      if (result.manifest === this.#manifest) return result
      await writeFileAtomic(this.manifestPath, serializeManifest(result.manifest))
      this.#setManifest(result.manifest)
      for (const { app, tag } of result.removed) {
        await rm(this.releaseDir(app, tag), { recursive: true, force: true })
      }
      this.emit('change', result)
      return result
    })
    this.#queue = run.catch(() => undefined)
    return run
  }

  #setManifest(manifest: Manifest): void {
    this.#manifest = manifest
    this.#bytes = serializeManifest(manifest)
    this.#etag = manifestEtag(this.#bytes)
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
