import { arrayBuffer } from 'node:stream/consumers'
import { send } from '../http-request.ts'

/**
 * The part of `fetch` that webtorrent and bittorrent-tracker use (HTTP tracker announces, web seed range
 * requests), on node:http. The package's bundle puts it in place of `cross-fetch-ponyfill`
 * (scripts/package.ts), which hands them Node's own fetch.
 *
 * Why: every agent starts a deploy at the same moment, and its first request through Node's fetch costs
 * about 80 ms of CPU (loading Node's internal undici and compiling its WebAssembly HTTP parser) against
 * about 11 ms through node:http. In the fleet bed, N agents share two cores, so that is N x 35 ms of wall
 * time before the first piece arrives; on a real fleet it is still 70 ms of each host's deploy.
 *
 * What it keeps of fetch: GET, request headers, `signal` (aborts the request and the body), redirects (up
 * to MAX_REDIRECTS, as fetch follows them), and a response with `status`, `ok`, `headers.get()` and
 * `arrayBuffer()`. Other options (`agent`, `dispatcher`, `cache`) are ignored: the swarm uses no proxy.
 */
export interface FetchSubsetInit {
  method?: string
  headers?: Record<string, string>
  signal?: AbortSignal
}

export interface FetchSubsetResponse {
  status: number
  ok: boolean
  url: string
  headers: { get(name: string): string | null }
  /** Stands in for fetch's web stream: bittorrent-tracker only checks `body.on` before arrayBuffer(). */
  body: object
  arrayBuffer(): Promise<ArrayBuffer>
}

const MAX_REDIRECTS = 20

export async function fetchSubset(url: string | URL, init: FetchSubsetInit = {}): Promise<FetchSubsetResponse> {
  const method = (init.method ?? 'GET').toUpperCase()
  if (method !== 'GET') throw new TypeError(`fetch subset (src/swarm/http-fetch.ts): only GET is supported, not ${method}`)
  const signal = init.signal ?? new AbortController().signal
  let target = String(url)
  for (let hop = 0; ; hop++) {
    const protocol = new URL(target).protocol
    if (protocol !== 'http:' && protocol !== 'https:') throw new TypeError(`fetch subset: ${protocol} URLs are not supported (${target})`)
    const res = await send(target, { method: 'GET', headers: init.headers ?? {}, signal })
    const status = res.statusCode ?? 0
    const location = res.headers.location
    if (status >= 300 && status < 400 && status !== 304 && location) {
      res.resume()
      if (hop >= MAX_REDIRECTS) throw new TypeError(`fetch subset: more than ${MAX_REDIRECTS} redirects from ${String(url)}`)
      target = new URL(location, target).toString()
      continue
    }
    let body: Promise<ArrayBuffer> | undefined
    return {
      status,
      ok: status >= 200 && status < 300,
      url: target,
      headers: {
        get(name: string) {
          const value = res.headers[name.toLowerCase()]
          return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
        },
      },
      body: {},
      arrayBuffer() {
        return (body ??= arrayBuffer(res))
      },
    }
  }
}

export default fetchSubset
