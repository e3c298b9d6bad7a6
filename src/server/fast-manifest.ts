import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/**
 * A raw front for the server's hottest request: an agent polling an unchanged manifest over a
 * keep-alive connection. node:http's parser and response machinery cap a 304 at about 0.28 of nginx on
 * one core; answering this one exact request shape from a prebuilt buffer skips them.
 *
 * Every connection the HTTP server accepts starts here. While it sends only polls this module fully
 * recognises (one complete request per read, `GET /manifest HTTP/1.1`, a Host, an If-None-Match equal
 * to the current ETag, and nothing but a few headers known not to change the answer), each gets the
 * same 304 node:http would send, byte for byte but the Date. The first read that is anything else
 * (another path, a query, HEAD, HTTP/1.0, a body, an unknown or repeated header, several ETags, a
 * request split over reads or pipelined...) goes back, unread, to node:http together with the
 * connection, which node:http then owns for good. When in doubt it hands off: a wrong hand-off costs
 * speed, a wrong answer costs correctness.
 */
export interface FastManifestOptions {
  /** The manifest's current strong ETag; read for every request, since a publish changes it. */
  etag(): string
  /** Called for every 304 answered here (node:http's 304 path counts the same way). */
  answered(): void
}

export interface FastManifestFront {
  /** Destroys the connections still on the fast path (shutdown); handed-off ones are node:http's. */
  destroyAll(): void
}

/**
 * Installs the front on `http` (before it listens): takes node:http's own 'connection' listener out
 * and calls it on hand-off. The HTTP server keeps listening itself, so its close(), address(),
 * connection tracking and headersTimeout/requestTimeout checks stay as they are.
 */
export function installFastManifest(http: Server, options: FastManifestOptions): FastManifestFront {
  const listeners = http.listeners('connection') as Array<(this: Server, socket: Socket) => void>
  if (listeners.length !== 1) throw new Error(`fast manifest path: expected node:http's one 'connection' listener, found ${listeners.length}`)
  const nodeConnection = listeners[0]!
  http.removeListener('connection', nodeConnection)
  const sockets = new Set<Socket>()
  const notModified = new NotModifiedResponse()

  http.on('connection', (socket: Socket) => {
    // With maxRequestsPerSocket node:http counts requests and closes; the fast path does not count.
    if (http.maxRequestsPerSocket) return nodeConnection.call(http, socket)
    sockets.add(socket)
    let accepted: Buffer | undefined // the last request bytes answered here, and the ETag they matched
    let acceptedEtag = ''

    const onData = (chunk: Buffer) => {
      const etag = options.etag()
      // An agent repeats the same bytes every poll: the same bytes and ETag get the same verdict.
      if (!(accepted && etag === acceptedEtag && chunk.equals(accepted))) {
        if (!isManifestPoll(chunk, etag)) return handOff(chunk)
        accepted = Buffer.from(chunk) // a copy: the read buffer is not ours to keep
        acceptedEtag = etag
      }
      options.answered()
      // A client that sends polls without reading the answers: stop reading until they drain, as
      // node:http does.
      if (!socket.write(notModified.bytes(etag, http.keepAliveTimeout))) {
        socket.pause()
        socket.once('drain', onDrain)
      }
    }
    const onDrain = () => socket.resume()
    // The client half-closed after its polls, all answered already: node:http ends its side too.
    const onEnd = () => socket.end()
    const onError = () => socket.destroy()
    const onTimeout = () => socket.destroy()
    const onClose = () => sockets.delete(socket)

    const handOff = (chunk: Buffer) => {
      sockets.delete(socket)
      socket.off('data', onData).off('drain', onDrain).off('end', onEnd).off('error', onError).off('timeout', onTimeout).off('close', onClose)
      socket.setTimeout(0)
      // Paused, the pushed-back bytes wait in the socket's buffer while node:http attaches its listeners
      // (its parser then reads the kernel socket directly); resume() hands them to that parser first.
      socket.pause()
      socket.unshift(chunk)
      nodeConnection.call(http, socket)
      socket.resume()
    }

    socket.on('data', onData).on('end', onEnd).on('error', onError).on('timeout', onTimeout).on('close', onClose)
    // node:http's idle limit between keep-alive requests: keepAliveTimeout plus keepAliveTimeoutBuffer.
    const buffer = (http as Server & { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer ?? 1000
    if (http.keepAliveTimeout > 0) socket.setTimeout(http.keepAliveTimeout + buffer)
  })

  return {
    destroyAll() {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
  }
}

const REQUEST_LINE = 'GET /manifest HTTP/1.1\r\n'
/** Far above any agent's poll; anything bigger is node:http's to judge (it has its own limits). */
const MAX_REQUEST_BYTES = 2048
const HOST = 1
const IF_NONE_MATCH = 2
const CONNECTION = 4
/** The headers a poll answered here may carry, each once; one bit each, to spot repeats. */
const ALLOWED = new Map<string, number>([
  ['host', HOST],
  ['if-none-match', IF_NONE_MATCH],
  ['connection', CONNECTION],
  ['user-agent', 8],
  ['accept', 16],
  ['accept-encoding', 32],
  ['accept-language', 64],
  ['sec-fetch-mode', 128],
])
/** Visible ASCII with inner spaces or tabs; no trailing whitespace, controls or obs-text. */
const SAFE_VALUE = /^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/
const LEADING_WHITESPACE = /^[ \t]+/

/**
 * True when `request` is exactly one complete HTTP/1.1 keep-alive GET of /manifest whose answer is a
 * 304 for `etag`, and holds nothing node:http or the route would treat differently. Exported for tests.
 */
export function isManifestPoll(request: Buffer, etag: string): boolean {
  if (request.length > MAX_REQUEST_BYTES) return false
  const text = request.toString('latin1')
  if (!text.startsWith(REQUEST_LINE)) return false
  // The headers end once, at the end of this read: nothing partial, nothing pipelined behind.
  const end = text.indexOf('\r\n\r\n')
  if (end < 0 || end + 4 !== text.length) return false
  let seen = 0
  for (let pos = REQUEST_LINE.length; pos < end + 2; ) {
    const eol = text.indexOf('\r\n', pos)
    const line = text.slice(pos, eol)
    pos = eol + 2
    const colon = line.indexOf(':')
    if (colon <= 0) return false
    const bit = ALLOWED.get(line.slice(0, colon).toLowerCase())
    if (bit === undefined || seen & bit) return false
    seen |= bit
    const value = line.slice(colon + 1).replace(LEADING_WHITESPACE, '')
    if (!SAFE_VALUE.test(value)) return false
    // One ETag, exactly the current one: lists, `*` and weak forms go the general way.
    if (bit === IF_NONE_MATCH && value !== etag) return false
    if (bit === CONNECTION && value.toLowerCase() !== 'keep-alive') return false
  }
  // node:http answers 400 without a Host (requireHostHeader); without If-None-Match it is a 200.
  return (seen & (HOST | IF_NONE_MATCH)) === (HOST | IF_NONE_MATCH)
}

/**
 * The 304 node:http sends from `answerUnchangedManifest` on a keep-alive connection, same headers in
 * the same order; rebuilt when the ETag, the second (Date, as node caches it) or keepAliveTimeout change.
 */
export class NotModifiedResponse {
  #etag = ''
  #second = -1
  #keepAliveTimeout = -1
  #bytes = Buffer.alloc(0)

  bytes(etag: string, keepAliveTimeout: number, now = Date.now()): Buffer {
    const second = Math.floor(now / 1000)
    if (etag !== this.#etag || second !== this.#second || keepAliveTimeout !== this.#keepAliveTimeout) {
      const keepAlive = keepAliveTimeout > 0 ? `Keep-Alive: timeout=${Math.floor(keepAliveTimeout / 1000)}\r\n` : ''
      this.#bytes = Buffer.from(
        `HTTP/1.1 304 Not Modified\r\nETag: ${etag}\r\nCache-Control: no-cache\r\nDate: ${new Date(second * 1000).toUTCString()}\r\nConnection: keep-alive\r\n${keepAlive}\r\n`,
        'latin1',
      )
      this.#etag = etag
      this.#second = second
      this.#keepAliveTimeout = keepAliveTimeout
    }
    return this.#bytes
  }
}
