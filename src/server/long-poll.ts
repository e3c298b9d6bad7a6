import type { ServerResponse } from 'node:http'

/**
 * Requests for /manifest?wait=N holding an ETag that is still current: they are answered when the
 * manifest changes (so hosts start a deploy within moments of a publish) or when the wait is over.
 * The cron poll stays the fallback; this only shortens the delay.
 */
export class ManifestWaiters {
  readonly #waiting = new Map<ServerResponse, { timer: NodeJS.Timeout; answer: (res: ServerResponse) => void }>()

  /** Holds `res` until release() or `waitMs`, then calls `answer(res)` (which reads the manifest then). */
  hold(res: ServerResponse, waitMs: number, answer: (res: ServerResponse) => void): void {
    const timer = setTimeout(() => {
      this.#waiting.delete(res)
      answer(res)
    }, waitMs)
    this.#waiting.set(res, { timer, answer })
    res.on('close', () => {
      clearTimeout(timer)
      this.#waiting.delete(res)
    })
  }

  /** Answers every held request now (the manifest changed). */
  release(): void {
    const held = [...this.#waiting]
    this.#waiting.clear()
    for (const [res, { timer, answer }] of held) {
      clearTimeout(timer)
      answer(res)
    }
  }

  /** Ends every held request (shutdown). */
  close(): void {
    for (const [res, { timer }] of this.#waiting) {
      clearTimeout(timer)
      res.destroy()
    }
    this.#waiting.clear()
  }
}

/** Longest wait a client may ask for, in ms: below common proxy idle timeouts. */
export const MAX_WAIT_MS = 60_000
