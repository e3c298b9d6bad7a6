import { rm } from 'node:fs/promises'
import type WebTorrent from 'webtorrent'
import type { Torrent } from 'webtorrent'
import { stopTorrent } from '../swarm/download.ts'
import type { TrafficStats } from '../swarm/download.ts'

/** A release that stopped seeding: its download directory (now deleted) and what it sent to peers. */
export interface SeedOver {
  dir: string
  app: string
  tag: string
  uploaded: number
}

/**
 * Keeps freshly activated releases seeding for the seed window so later hosts get them from peers, then
 * stops the torrent and deletes the downloaded tarball.
 */
export class Linger {
  readonly #client: WebTorrent
  readonly #held = new Map<string, { timer: NodeJS.Timeout; stop: () => Promise<void> }>()
  readonly #onOver: (over: SeedOver) => void

  /** `onOver` is called when a torrent stopped seeding (window over or stopAll) and its directory is gone. */
  constructor(client: WebTorrent, onOver: (over: SeedOver) => void) {
    this.#client = client
    this.#onOver = onOver
  }

  hold(torrent: Torrent, dir: string, windowMs: number, traffic: () => TrafficStats, release: { app: string; tag: string }): void {
    const stop = async () => {
      clearTimeout(timer)
      this.#held.delete(dir)
      const stats = traffic()
      await stopTorrent(this.#client, torrent)
      await rm(dir, { recursive: true, force: true })
      this.#onOver({ dir, ...release, uploaded: stats.uploaded })
    }
    const timer = setTimeout(() => void stop(), windowMs)
    this.#held.set(dir, { timer, stop })
  }

  /** Stops every lingering torrent now (shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#held.values()].map((h) => h.stop()))
  }
}
