import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * True when the request carries `Authorization: Bearer <token>` with one of the configured tokens.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths.
 */
export function isAuthorized(req: IncomingMessage, tokens: readonly string[]): boolean {
  const header = req.headers.authorization ?? ''
  const m = /^Bearer\s+(\S+)$/i.exec(header)
  if (!m) return false
  const presented = digest(m[1]!)
  let ok = false
  for (const token of tokens) ok = timingSafeEqual(presented, digest(token)) || ok
  return ok
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
