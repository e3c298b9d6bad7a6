import { send } from '../http-request.ts'
import { RookeryError, UnavailableError } from '../errors.ts'
import { manifestSchema, type Manifest } from '../manifest/manifest.ts'

export interface FetchOptions {
  timeoutMs: number
  /** Bodies larger than this are refused (a broken or hostile server must not exhaust memory). */
  maxBytes: number
  /** Aborts the request early (agent shutdown). */
  signal?: AbortSignal
}

/**
 * GETs a URL (node:http, see src/http-request.ts), with a time limit on the whole exchange and a cap on the body.
 * Network failures and 5xx are UnavailableError (retry later); other statuses are returned to the caller.
 */
export async function httpGet(
  url: string,
  options: FetchOptions,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout
  try {
    const res = await send(url, { method: 'GET', headers, signal })
    const declared = Number(res.headers['content-length'] ?? 0)
    if (declared > options.maxBytes) {
      res.destroy()
      throw new UnavailableError('ROOKERY_TOO_LARGE', `GET ${url}: body of ${declared} bytes is over the ${options.maxBytes}-byte limit`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res) {
      size += (chunk as Buffer).length
      if (size > options.maxBytes) {
        res.destroy()
        throw new UnavailableError('ROOKERY_TOO_LARGE', `GET ${url}: body over the ${options.maxBytes}-byte limit`)
      }
      chunks.push(chunk as Buffer)
    }
    const status = res.statusCode ?? 0
    if (status >= 500) {
      throw new UnavailableError('ROOKERY_SERVER_ERROR', `GET ${url}: server answered ${status}`)
    }
    return { status, headers: res.headers, body: Buffer.concat(chunks) }
  } catch (err) {
    if (err instanceof RookeryError) throw err
    const reason = timeout.aborted ? `no answer within ${options.timeoutMs} ms` : options.signal?.aborted ? 'aborted' : ((err as Error).message || String(err))
    throw new UnavailableError('ROOKERY_UNREACHABLE', `GET ${url}: ${reason}`, { cause: err })
  }
}

/**
 * A manifest that is not JSON or not a rookery manifest is treated like an unreachable server: the
 * agent keeps its releases and retries later.
 *
 * Polls the manifest with If-None-Match, so an unchanged manifest costs a 304 and no parsing.
 * Keeps the last good document; a bad answer never replaces it.
 */
export class ManifestPoller {
  readonly url: string
  readonly #options: FetchOptions
  #etag: string | undefined
  #manifest: Manifest | undefined
  /** A newer document the long-poll brought, for the next poll to use instead of asking again. */
  #offered: { body: Buffer; etag: string | undefined } | undefined

  constructor(url: string, options: FetchOptions) {
    this.url = url
    this.#options = options
  }

  /** The last good document, if any. */
  get last(): Manifest | undefined {
    return this.#manifest
  }

  /**
   * The manifest as the long-poll just received it (a 200): the next poll uses it instead of downloading
   * it again, so a publish costs each host one download of the manifest, not two. A later offer replaces
   * an unused one; a document that does not validate is left to the next poll, which then fetches it and
   * reports the error.
   */
  offer(body: Buffer, etag: string | undefined): void {
    this.#offered = { body, etag }
  }

  /** Fetches the manifest (or takes the offered one); `changed` is false on a 304 or the same ETag. */
  async poll(): Promise<{ manifest: Manifest; changed: boolean }> {
    const offered = this.#offered
    this.#offered = undefined
    if (offered) {
      try {
        const changed = offered.etag === undefined || offered.etag !== this.#etag || !this.#manifest
        return { manifest: this.#accept(offered.body, offered.etag), changed }
      } catch {
        // fetched below, where a bad document is reported
      }
    }
    const headers: Record<string, string> = this.#etag && this.#manifest ? { 'if-none-match': this.#etag } : {}
    const res = await httpGet(this.url, this.#options, headers)
    if (res.status === 304 && this.#manifest) return { manifest: this.#manifest, changed: false }
    if (res.status !== 200) throw new UnavailableError('ROOKERY_MANIFEST_STATUS', `GET ${this.url}: answered ${res.status}`)
    const etag = res.headers.etag
    return { manifest: this.#accept(res.body, typeof etag === 'string' ? etag : undefined), changed: true }
  }

  /** Parses and checks a manifest document, and keeps it as the last good one. */
  #accept(body: Buffer, etag: string | undefined): Manifest {
    let data: unknown
    try {
      data = JSON.parse(body.toString('utf8'))
    } catch {
      throw new UnavailableError('ROOKERY_BAD_MANIFEST', `GET ${this.url}: the answer is not JSON`)
    }
    const parsed = manifestSchema.safeParse(data)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new UnavailableError('ROOKERY_BAD_MANIFEST', `GET ${this.url}: not a rookery manifest (${issue?.path.join('.')}: ${issue?.message})`)
    }
    this.#etag = etag
    this.#manifest = parsed.data
    return parsed.data
  }
}
