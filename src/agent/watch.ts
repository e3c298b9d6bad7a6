import { parsePublishing, PUBLISHING_HEADER, type Publishing } from '../manifest/manifest.ts'
import { httpGet } from './fetch.ts'
import { retryDelayMs } from './plan.ts'

export interface WatchOptions {
  /** The manifest URL. */
  url: string
  /** How long the server may hold each request. */
  longPollMs: number
  requestTimeoutMs: number
  maxBytes: number
  backoffMs: number
  signal: AbortSignal
  /** Called with the new document when the manifest's ETag changed (not for the first answer). */
  onChange: (body: Buffer, etag: string | undefined) => void
  /** Called when the server says a release is being uploaded (it is not in the manifest yet). */
  onPublishing: (upload: Publishing) => void
}

/**
 * Long-polls the manifest (`?wait=`, `If-None-Match`) until `signal` aborts, calling `onChange` when it
 * changes and `onPublishing` when the server says a release is being uploaded. A server that answers at
 * once instead of holding the request (a static copy of the manifest) is asked only every `longPollMs`;
 * failures wait with back-off (the cron polls log them).
 */
export async function watchManifest(options: WatchOptions): Promise<void> {
  const url = `${options.url}?wait=${Math.round(options.longPollMs / 1000)}`
  const { signal } = options
  let etag: string | undefined
  let failures = 0
  while (!signal.aborted) {
    const started = Date.now()
    let pause = 0
    try {
      const headers: Record<string, string> = etag ? { 'if-none-match': etag } : {}
      const res = await httpGet(url, { timeoutMs: options.longPollMs + options.requestTimeoutMs, maxBytes: options.maxBytes, signal }, headers)
      failures = 0
      const publishing = res.headers[PUBLISHING_HEADER]
      const upload = typeof publishing === 'string' ? parsePublishing(publishing) : undefined
      if (upload) options.onPublishing(upload)
      if (res.status === 200) {
        const changed = etag !== undefined && res.headers.etag !== etag
        etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined
        if (changed) options.onChange(res.body, etag)
      } else if (res.status === 304 && publishing === undefined && Date.now() - started < 1000) {
        pause = options.longPollMs // the server did not hold the request: it does not long-poll
      }
    } catch {
      failures++
      pause = retryDelayMs(failures, options.backoffMs)
    }
    if (pause > 0 && !signal.aborted) await sleep(pause, signal)
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
