import type { ServerResponse } from 'node:http'

/** Answers a held request from the manifest as it is then; `publishing` says whose upload started (PUBLISHING_HEADER). */
export type WaiterAnswer = (res: ServerResponse, publishing?: string) => void

/**
 * Requests for /manifest?wait=N holding an ETag that is still current: they are answered when the
 * manifest changes (so hosts start a deploy within moments of a publish), when a publish upload starts
 * (so hosts get ready while the tarball arrives), or when the wait is over.
 * The cron poll stays the fallback; this only shortens the delay.
 */
export class ManifestWaiters {
  readonly #waiting = new Map<ServerResponse, { timer: NodeJS.Timeout; answer: WaiterAnswer }>()

  /** Holds `res` until release(), publishing() or `waitMs`, then calls `answer` (which reads the manifest then). */
  hold(res: ServerResponse, waitMs: number, answer: WaiterAnswer): void {
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
    this.#answerAll()
  }

  /**
   * Answers every held request now with `publishing`, the value of PUBLISHING_HEADER: a release is being
   * uploaded. The hosts poll again at once and are held until the manifest changes.
   */
  publishing(publishing: string): void {
    this.#answerAll(publishing)
  }

  #answerAll(publishing?: string): void {
    const held = [...this.#waiting]
    this.#waiting.clear()
    for (const [res, { timer, answer }] of held) {
      clearTimeout(timer)
      answer(res, publishing)
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
