import type { IncomingMessage, ServerResponse } from 'node:http'

/** Sends a JSON body with a status. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(`${JSON.stringify(body)}\n`)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' })
  res.end(bytes)
}

/** An error answer: `{ "error": { "code", "message" } }`, the shape the CLI prints. */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.destroy()
  sendJson(res, status, { error: { code, message } })
}

/** Reads a small request body (JSON commands), refusing more than `limit` bytes. */
export async function readSmallBody(req: IncomingMessage, limit = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of req) {
    length += (chunk as Buffer).length
    if (length > limit) throw new HttpError(413, 'ROOKERY_TOO_LARGE', `request body over ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** An error that maps straight to an HTTP answer. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}
