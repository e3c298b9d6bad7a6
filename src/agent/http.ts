import { request, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'

/**
 * One HTTP request with node:http, resolving once the answer's headers arrived (the caller reads or
 * drops the body). The agent uses node:http rather than undici because it idles most of its life and
 * undici costs about 10-20 MB of RSS once loaded; node:https is loaded only for https URLs.
 * `signal` aborts the whole exchange, the body included: reading it then fails.
 */
export async function send(
  url: string,
  options: { method: 'GET' | 'POST'; headers?: OutgoingHttpHeaders; body?: string; signal: AbortSignal },
): Promise<IncomingMessage> {
  const target = new URL(url)
  const requestFn = target.protocol === 'https:' ? (await import('node:https')).request : request
  return new Promise((resolve, reject) => {
    const req = requestFn(target, { method: options.method, headers: options.headers ?? {}, signal: options.signal }, resolve)
    req.on('error', reject)
    req.end(options.body)
  })
}
