import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'

/**
 * One HTTP request with node:http, resolving once the answer's headers arrived (the caller reads or
 * drops the body). `signal` aborts the whole exchange, the body included: reading it then fails.
 *
 * Memory, because the agent idles most of its life: undici costs 10-20 MB of RSS once loaded, so the
 * agent uses node:http (and so does the download's HTTP in the package, src/swarm/http-fetch.ts, for
 * CPU); and node:http is taken with process.getBuiltinModule, not `import`, because an ESM import of
 * node:http reads every export, which loads Node's internal copy of undici (behind the lazy
 * `http.WebSocket` getter): 14.5 MB against 2 MB (Node 24). node:https (TLS, 6 MB) only for https URLs.
 */
export function send(
  url: string,
  options: { method: 'GET' | 'POST'; headers?: OutgoingHttpHeaders; body?: string; signal: AbortSignal },
): Promise<IncomingMessage> {
  const target = new URL(url)
  const { request } = process.getBuiltinModule(target.protocol === 'https:' ? 'node:https' : 'node:http')
  return new Promise((resolve, reject) => {
    const req = request(target, { method: options.method, headers: options.headers ?? {}, signal: options.signal }, resolve)
    req.on('error', reject)
    req.end(options.body)
  })
}
