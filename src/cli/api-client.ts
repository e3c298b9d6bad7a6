import { request } from 'undici'
import type { Readable } from 'node:stream'
import { RefusedError, UnavailableError, UsageError } from '../errors.ts'

/** The publish token: ROOKERY_TOKEN, as the README documents. */
export function publishToken(): string {
  const token = process.env.ROOKERY_TOKEN
  if (!token) throw new UsageError('no publish token: set ROOKERY_TOKEN to one of the server\'s publish_tokens')
  return token
}

/**
 * One call to the server's /api/v1: JSON answer on success; the server's `{error: {code, message}}`
 * becomes a RefusedError (4xx) or UnavailableError (5xx, network) with that message.
 */
export async function callApi(
  server: string,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  options: { token?: string; body?: Buffer | Readable | string; headers?: Record<string, string> } = {},
): Promise<Record<string, unknown>> {
  const url = `${server.replace(/\/+$/, '')}${path}`
  let res
  try {
    res = await request(url, {
      method,
      headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
      ...(options.body !== undefined ? { body: options.body } : {}),
      headersTimeout: 0,
      bodyTimeout: 0,
    })
  } catch (err) {
    throw new UnavailableError('ROOKERY_UNREACHABLE', `${method} ${url}: ${(err as Error).message}`, {
      cause: err,
      hint: 'is `rookery server` running there? (--server or ROOKERY_SERVER)',
    })
  }
  const text = await res.body.text()
  let data: Record<string, unknown> = {}
  try {
    data = JSON.parse(text) as Record<string, unknown>
  } catch {
    // not JSON: reported below with the status
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return data
  const error = data.error as { code?: string; message?: string } | undefined
  const message = `${method} ${url}: ${res.statusCode} ${error?.message ?? text.slice(0, 200)}`
  if (res.statusCode >= 500) throw new UnavailableError(error?.code ?? 'ROOKERY_SERVER_ERROR', message)
  throw new RefusedError(error?.code ?? 'ROOKERY_REFUSED', message)
}

/** `--server`, else ROOKERY_SERVER, else a local server on the default port. */
export function serverUrl(flag: string | undefined): string {
  return flag ?? process.env.ROOKERY_SERVER ?? 'http://127.0.0.1:8998'
}
