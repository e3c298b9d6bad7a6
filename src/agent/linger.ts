import { rm } from 'node:fs/promises'
import type WebTorrent from 'webtorrent'
import type { Torrent } from 'webtorrent'
import type { Logger } from '../log.ts'
import { stopTorrent } from '../swarm/download.ts'
import type { TrafficStats } from '../swarm/download.ts'

/**
 * Keeps freshly activated releases seeding for the seed window so later hosts get them from peers, then
 * stops the torrent and deletes the downloaded tarball.
 */
export class Linger {
  readonly #client: WebTorrent
  readonly #log: Logger
  readonly #held = new Map<string, { timer: NodeJS.Timeout; stop: () => Promise<void> }>()

  readonly #onUploaded: (app: string, bytes: number) => void
  readonly #onIdle: () => void

  /** `onIdle` is called when a seed window ends and no other torrent is held (the client may close). */
  constructor(client: WebTorrent, log: Logger, onUploaded: (app: string, bytes: number) => void = () => {}, onIdle: () => void = () => {}) {
    this.#client = client
    this.#log = log
    this.#onUploaded = onUploaded
    this.#onIdle = onIdle
  }

  /** Directories (downloads/<infohash>) still in use by a seeding torrent. */
  get dirs(): string[] {
    return [...this.#held.keys()]
  }

  hold(torrent: Torrent, dir: string, windowMs: number, traffic: () => TrafficStats, fields: Record<string, unknown>): void {
    const stop = async () => {
      clearTimeout(timer)
      this.#held.delete(dir)
      const stats = traffic()
      await stopTorrent(this.#client, torrent)
      await rm(dir, { recursive: true, force: true })
      this.#log.info({ ...fields, uploaded: stats.uploaded }, 'seed window over')
      this.#onUploaded(String(fields.app), stats.uploaded)
    }
    const timer = setTimeout(() => {
      void stop().then(() => {
        if (this.#held.size === 0) this.#onIdle()
      })
    }, windowMs)
    this.#held.set(dir, { timer, stop })
  }

  /** Stops every lingering torrent now (shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#held.values()].map((h) => h.stop()))
  }
}
