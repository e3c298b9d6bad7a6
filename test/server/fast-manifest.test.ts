import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { silentLogger } from '../../src/log.ts'
import { sha256File } from '../../src/release/hash.ts'
import { packDirectory } from '../../src/release/pack.ts'
import { serverConfigSchema } from '../../src/server/config.ts'
import { installFastManifest, isManifestPoll, NotModifiedResponse } from '../../src/server/fast-manifest.ts'
import { startServer, type RunningServer } from '../../src/server/server.ts'
import { freePort } from '../helpers/processes.ts'

// The raw front for unchanged-manifest polls (src/server/fast-manifest.ts): its answers must be node:http's,
// and anything it does not fully recognise must reach node:http unchanged, on the same connection.

interface Answer {
  status: number
  /** Status line and headers, the Date value blanked. */
  head: string
  headers: Map<string, string>
  body: Buffer
}

/** A raw TCP client: writes exact bytes, reads HTTP answers one at a time. */
class Raw {
  readonly socket: Socket
  #buffered = Buffer.alloc(0)
  #ended = false
  #wake: (() => void) | undefined

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.#buffered = Buffer.concat([this.#buffered, d])
      this.#wake?.()
    })
    socket.on('close', () => {
      this.#ended = true
      this.#wake?.()
    })
    socket.on('error', () => undefined)
  }

  static async open(port: number): Promise<Raw> {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    return new Raw(socket)
  }

  get closed(): boolean {
    return this.#ended
  }

  send(bytes: string | Buffer): void {
    this.socket.write(bytes)
  }

  /** The next answer; `head` when it answers a HEAD (no body whatever the headers say). */
  async answer(head = false): Promise<Answer> {
    for (;;) {
      const parsed = this.#parse(head)
      if (parsed) return parsed
      if (this.#ended) throw new Error(`connection closed with ${this.#buffered.length} bytes of an incomplete answer`)
      await new Promise<void>((resolve) => (this.#wake = resolve))
    }
  }

  /** Resolves when the server closes the connection. */
  async whenClosed(): Promise<void> {
    while (!this.#ended) await new Promise<void>((resolve) => (this.#wake = resolve))
  }

  #parse(head: boolean): Answer | undefined {
    const end = this.#buffered.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const text = this.#buffered.subarray(0, end).toString('latin1')
    const [statusLine, ...lines] = text.split('\r\n')
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const))
    const status = Number(statusLine!.split(' ')[1])
    let length = 0
    if (!head && status !== 304 && status !== 204) {
      if (headers.has('content-length')) length = Number(headers.get('content-length'))
      else if (headers.get('connection') === 'close') length = this.#ended ? this.#buffered.length - end - 4 : Infinity
      else throw new Error(`answer without a length: ${text}`)
    }
    if (this.#buffered.length < end + 4 + length) return undefined
    const body = this.#buffered.subarray(end + 4, end + 4 + length)
    this.#buffered = this.#buffered.subarray(end + 4 + length)
    // Answers are compared but for the Date, which must be now (to the second, as node:http caches it).
    // (node:http's 400 for a request it cannot parse has no Date.)
    if (headers.has('date')) {
      if (!(Math.abs(Date.parse(headers.get('date')!) - Date.now()) < 2000)) throw new Error(`answer with a Date of ${headers.get('date')}`)
      headers.set('date', '-')
    }
    return { status, head: text.replace(/\r\nDate: [^\r]*/, '\r\nDate: -'), headers, body }
  }

  close(): void {
    this.socket.destroy()
  }
}

const poll = (etag: string, extra = '') => `GET /manifest HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: ${etag}\r\n${extra}\r\n`

describe('isManifestPoll', () => {
  const etag = '"0123456789abcdef0123456789abcdef"'
  const yes = (s: string) => assert.equal(isManifestPoll(Buffer.from(s, 'latin1'), etag), true, JSON.stringify(s))
  const no = (s: string) => assert.equal(isManifestPoll(Buffer.from(s, 'latin1'), etag), false, JSON.stringify(s))

  test('recognises what wrk, node:http agents, fetch and curl send', () => {
    yes(poll(etag))
    yes(`GET /manifest HTTP/1.1\r\nif-none-match: ${etag}\r\nHost: 127.0.0.1:8998\r\nConnection: keep-alive\r\n\r\n`)
    yes(`GET /manifest HTTP/1.1\r\nhost: h\r\nconnection: Keep-Alive\r\nif-none-match: ${etag}\r\naccept: */*\r\naccept-language: *\r\nsec-fetch-mode: cors\r\nuser-agent: node\r\naccept-encoding: gzip, deflate\r\n\r\n`)
    yes(`GET /manifest HTTP/1.1\r\nHost:h\r\nIf-None-Match:\t${etag}\r\n\r\n`)
  })

  test('refuses everything else', () => {
    for (const s of [
      poll('"other"'),
      poll(`"other", ${etag}`),
      poll('*'),
      poll(`W/${etag}`),
      poll(`${etag} `),
      poll(etag).replace('GET', 'HEAD'),
      poll(etag).replace('HTTP/1.1', 'HTTP/1.0'),
      poll(etag).replace('/manifest', '/manifest?wait=1'),
      poll(etag).replace('/manifest', '/manifest/'),
      poll(etag).replace('/manifest', 'http://h/manifest'),
      poll(etag).replace('GET ', 'GET  '),
      poll(etag).replace('Host: 127.0.0.1\r\n', ''),
      poll(etag, 'Host: again\r\n'),
      poll(etag, `If-None-Match: ${etag}\r\n`),
      poll(etag, 'Connection: close\r\n'),
      poll(etag, 'Connection: keep-alive, Upgrade\r\n'),
      poll(etag, 'Content-Length: 0\r\n'),
      poll(etag, 'Transfer-Encoding: chunked\r\n'),
      poll(etag, 'Expect: 100-continue\r\n'),
      poll(etag, 'Upgrade: websocket\r\n'),
      poll(etag, 'X-Other: 1\r\n'),
      poll(etag, 'Accept:\r\n'),
      poll(etag, 'Accept : */*\r\n'),
      poll(etag, ' folded\r\n'),
      poll(etag, 'User-Agent: caf\xe9\r\n'),
      poll(etag, 'User-Agent: a\rb\r\n'),
      poll(etag, 'User-Agent: a\nb\r\n'),
      poll(etag, 'hostx\r\n'),
      poll(etag, `User-Agent: ${'x'.repeat(3000)}\r\n`),
      poll(etag).replaceAll('\r\n', '\n'),
      poll(etag).slice(0, -2),
      poll(etag) + 'G',
      poll(etag) + poll(etag),
      poll(etag) + 'body',
      'GET /manifest HTTP/1.1\r\n\r\n',
      '\r\n' + poll(etag),
    ]) no(s)
  })
})

describe('NotModifiedResponse', () => {
  test('is rebuilt when the second, the ETag or the timeout changes, and only then', () => {
    const r = new NotModifiedResponse()
    const a = r.bytes('"a"', 65_000, 1_000_000_100)
    assert.equal(r.bytes('"a"', 65_000, 1_000_000_900), a)
    const date = (ms: number) => new Date(ms).toUTCString()
    assert.equal(a.toString(), `HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nCache-Control: no-cache\r\nDate: ${date(1_000_000_000)}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n`)
    assert.match(r.bytes('"a"', 65_000, 1_000_001_000).toString(), new RegExp(`Date: ${date(1_000_001_000)}\r`))
    assert.match(r.bytes('"b"', 65_000, 1_000_001_000).toString(), /ETag: "b"/)
    assert.doesNotMatch(r.bytes('"b"', 0, 1_000_001_000).toString(), /Keep-Alive/)
  })
})

describe('on a bare node:http server', () => {
  // A handler that counts what reached node:http, answering like answerUnchangedManifest and route.
  let http: Server
  let port: number
  let etag = '"v1"'
  let handled = 0
  let counted = 0
  before(async () => {
    http = createServer((req, res) => {
      handled++
      if (req.url === '/slow') return void setTimeout(() => res.end('slow'), 800)
      if (req.url === '/manifest' && req.headers['if-none-match'] === etag) {
        res.writeHead(304, ['ETag', etag, 'Cache-Control', 'no-cache'])
        return void res.end()
      }
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 })
      res.end('ok')
    })
    http.keepAliveTimeout = 65_000
    installFastManifest(http, { etag: () => etag, answered: () => counted++ })
    http.listen(0, '127.0.0.1')
    await once(http, 'listening')
    port = (http.address() as { port: number }).port
  })
  after(() => {
    http.closeAllConnections()
    http.close()
  })

  test('answers polls itself, with the bytes node:http sends', async () => {
    const reference = await Raw.open(port)
    reference.send('GET /other HTTP/1.1\r\nHost: h\r\n\r\n') // hands this connection to node:http
    assert.equal((await reference.answer()).status, 200)
    reference.send(poll(etag))
    const fromNode = await reference.answer()
    reference.close()

    const raw = await Raw.open(port)
    handled = 0
    counted = 0
    for (let i = 0; i < 100; i++) {
      raw.send(poll(etag))
      assert.deepEqual(await raw.answer(), fromNode)
    }
    assert.equal(handled, 0, 'node:http saw a poll the fast path should have answered')
    assert.equal(counted, 100)
    etag = '"v2"' // a publish: the next poll with the old ETag goes to node:http
    raw.send(poll('"v1"'))
    assert.equal((await raw.answer()).status, 200)
    assert.equal(handled, 1)
    raw.send(poll(etag))
    assert.equal((await raw.answer()).status, 304)
    assert.equal(handled, 2, 'a handed-off connection stays node:http')
    assert.equal(counted, 100)
    raw.close()
  })

  test('closes an idle fast-path connection after keepAliveTimeout plus its buffer, as node:http does, and only while on the fast path', async () => {
    http.keepAliveTimeout = 300
    const buffered = http as Server & { keepAliveTimeoutBuffer: number }
    const saved = buffered.keepAliveTimeoutBuffer
    buffered.keepAliveTimeoutBuffer = 0
    try {
      const raw = await Raw.open(port)
      raw.send(poll(etag))
      assert.equal((await raw.answer()).headers.get('keep-alive'), 'timeout=0')
      const started = Date.now()
      await raw.whenClosed()
      assert.ok(Date.now() - started >= 250 && Date.now() - started < 3000, `closed after ${Date.now() - started} ms`)
      // A handed-off connection is node:http's: the fast path's idle timer must not cut a slow answer.
      const slow = await Raw.open(port)
      slow.send(poll(etag))
      assert.equal((await slow.answer()).status, 304)
      slow.send('GET /slow HTTP/1.1\r\nHost: h\r\n\r\n')
      const answer = await slow.answer()
      assert.equal(answer.body.toString(), 'slow')
      slow.close()
    } finally {
      http.keepAliveTimeout = 65_000
      buffered.keepAliveTimeoutBuffer = saved
    }
  })
})

describe('on the rookery server', () => {
  const TOKEN = 'fast-manifest-test-token-0123'
  let root: string
  let server: RunningServer
  let port: number

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rookery-fast-manifest-'))
    port = await freePort()
    const config = serverConfigSchema.parse({
      listen: `127.0.0.1:${port}`,
      public_url: `http://127.0.0.1:${port}`,
      data_dir: join(root, 'data'),
      publish_tokens: [TOKEN],
      torrent_port: 0,
    })
    server = await startServer(config, silentLogger(), 'test')
    await publish('v1')
  })

  after(async () => {
    await server?.close()
    await rm(root, { recursive: true, force: true })
  })

  async function publish(tag: string): Promise<void> {
    const dir = join(root, 'src', tag)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'data.bin'), randomBytes(1000))
    const path = join(root, `${tag}.tar.gz`)
    await packDirectory(dir, path)
    const res = await fetch(`${server.url}/api/v1/releases/web/${tag}`, {
      method: 'PUT',
      body: new Uint8Array(await readFile(path)),
      headers: { authorization: `Bearer ${TOKEN}`, 'x-rookery-sha256': await sha256File(path) },
    })
    assert.equal(res.status, 201)
  }

  const etag = () => server.store.document.etag
  const notModifiedCount = async () => Number(/rookery_manifest_requests_total\{status="304"\} (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0)

  /** A connection node:http owns from the start (its first request is not a poll). */
  async function nodeConnection(): Promise<Raw> {
    const raw = await Raw.open(port)
    raw.send('GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n')
    assert.equal((await raw.answer()).status, 200)
    return raw
  }

  test('a keep-alive connection polling many times gets 304s with the current ETag, counted', async () => {
    const reference = await nodeConnection()
    reference.send(poll(etag()))
    const fromNode = await reference.answer()
    reference.close()
    assert.equal(fromNode.status, 304)

    const before = await notModifiedCount()
    const raw = await Raw.open(port)
    for (let i = 0; i < 500; i++) {
      raw.send(poll(etag()))
      assert.deepEqual(await raw.answer(), fromNode)
    }
    assert.equal(await notModifiedCount(), before + 500)

    // A publish: the same connection, still polling with the old ETag, gets the new manifest.
    const old = etag()
    await publish('v2')
    assert.notEqual(etag(), old)
    raw.send(poll(old))
    const changed = await raw.answer()
    assert.equal(changed.status, 200)
    assert.equal(changed.headers.get('etag'), etag())
    assert.deepEqual(changed.body, server.store.document.bytes)
    raw.send(poll(etag()))
    const again = await raw.answer()
    assert.equal(again.status, 304)
    assert.equal(again.headers.get('etag'), etag())
    raw.close()
  })

  test('other requests on a polling connection get the answers node:http gives', async () => {
    const requests: Array<[string, (e: string) => string, boolean?]> = [
      ['HEAD', (e) => poll(e).replace('GET', 'HEAD'), true],
      ['HEAD, stale', () => poll('"stale"').replace('GET', 'HEAD'), true],
      ['lowercase names', (e) => `GET /manifest HTTP/1.1\r\nhost: h\r\nif-none-match: ${e}\r\nconnection: keep-alive\r\n\r\n`],
      ['several ETags', (e) => poll(`"0000", ${e}`)],
      ['*', () => poll('*')],
      ['stale', () => poll('"stale"')],
      ['no If-None-Match', () => 'GET /manifest HTTP/1.1\r\nHost: h\r\n\r\n'],
      ['?wait=1', (e) => poll(e).replace('/manifest', '/manifest?wait=1')],
      ['unknown header', (e) => poll(e, 'X-Trace: 1\r\n')],
      ['a body', (e) => poll(e, 'Content-Length: 2\r\n') + 'hi'],
      ['chunked', (e) => poll(e, 'Transfer-Encoding: chunked\r\n') + '0\r\n\r\n'],
      ['torrent', () => 'GET /torrents/web/v1.torrent HTTP/1.1\r\nHost: h\r\n\r\n'],
      ['pipelined', (e) => poll(e) + poll(e)],
      ['poll again', (e) => poll(e)],
    ]
    const answers = async (raw: Raw, e: string) => {
      const out: Array<[string, number, string, Buffer]> = []
      for (const [name, make, head] of requests) {
        raw.send(make(e))
        const a = await raw.answer(head)
        out.push([name, a.status, a.head, a.body])
        if (name === 'pipelined') {
          const second = await raw.answer()
          out.push([`${name} 2`, second.status, second.head, second.body])
        }
      }
      return out
    }
    const e = etag()
    const reference = await nodeConnection()
    const fromNode = await answers(reference, e)
    reference.close()
    for (const [name, status] of fromNode) if (name.startsWith('pipelined') || name === 'poll again') assert.equal(status, 304, name)

    const raw = await Raw.open(port)
    raw.send(poll(e))
    assert.equal((await raw.answer()).status, 304)
    assert.deepEqual(await answers(raw, e), fromNode)
    raw.close()

    // A tracker announce after fast-path polls.
    const announcing = await Raw.open(port)
    announcing.send(poll(e))
    assert.equal((await announcing.answer()).status, 304)
    const infohash = server.store.manifest.apps.web!.releases[0]!.infohash
    const bin = (hex: string) => [...Buffer.from(hex, 'hex')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
    announcing.send(`GET /announce?info_hash=${bin(infohash)}&peer_id=${bin(randomBytes(20).toString('hex'))}&port=6881&uploaded=0&downloaded=0&left=0&compact=1 HTTP/1.1\r\nHost: h\r\n\r\n`)
    const announced = await announcing.answer()
    assert.equal(announced.status, 200)
    assert.match(announced.body.toString('latin1'), /^d.*8:interval/)
    announcing.send(poll(e))
    assert.equal((await announcing.answer()).status, 304)
    announcing.close()
  })

  test('a poll split across two TCP writes, first or after fast-path polls', async () => {
    for (const before of [0, 3]) {
      const raw = await Raw.open(port)
      for (let i = 0; i < before; i++) {
        raw.send(poll(etag()))
        assert.equal((await raw.answer()).status, 304)
      }
      const request = poll(etag())
      raw.send(request.slice(0, 20))
      await new Promise((r) => setTimeout(r, 50))
      raw.send(request.slice(20))
      const a = await raw.answer()
      assert.equal(a.status, 304)
      assert.equal(a.headers.get('etag'), etag())
      raw.send(poll(etag()))
      assert.equal((await raw.answer()).status, 304)
      raw.close()
    }
  })

  test('HTTP/1.0 and Connection: close get node:http answers and the connection closes', async () => {
    for (const request of [poll(etag()).replace('HTTP/1.1', 'HTTP/1.0'), poll(etag(), 'Connection: close\r\n')]) {
      const raw = await Raw.open(port)
      raw.send(poll(etag()))
      assert.equal((await raw.answer()).headers.get('connection'), 'keep-alive')
      raw.send(request)
      const a = await raw.answer()
      assert.equal(a.status, 304)
      assert.equal(a.headers.get('connection'), 'close')
      await raw.whenClosed()
    }
  })

  test('garbage gets node:http 400, first or after fast-path polls', async () => {
    const reference = await Raw.open(port)
    reference.send('GARBAGE\r\n\r\n')
    const fromNode = await reference.answer()
    await reference.whenClosed()
    assert.equal(fromNode.status, 400)
    const raw = await Raw.open(port)
    raw.send(poll(etag()))
    assert.equal((await raw.answer()).status, 304)
    raw.send('GARBAGE\r\n\r\n')
    assert.deepEqual(await raw.answer(), fromNode)
    await raw.whenClosed()
  })

  test('a client that half-closes after a poll gets its answer, then the end', async () => {
    const raw = await Raw.open(port)
    raw.socket.end(poll(etag()))
    assert.equal((await raw.answer()).status, 304)
    await raw.whenClosed()
  })

  // Last: closes the server. Its connections must all be closed at once; close() as a whole also
  // waits for the origin seeder's BitTorrent client (about 1 s once it seeds a release).
  test('close() ends idle fast-path connections at once', { timeout: 20_000 }, async () => {
    const idle = await Promise.all(Array.from({ length: 5 }, () => Raw.open(port)))
    for (const raw of idle) {
      raw.send(poll(etag()))
      assert.equal((await raw.answer()).status, 304)
    }
    const handedOff = await nodeConnection()
    const silent = await Raw.open(port) // sent nothing yet
    const started = Date.now()
    const closing = server.close()
    await Promise.all([...idle, handedOff, silent].map((raw) => raw.whenClosed()))
    assert.ok(Date.now() - started < 500, `connections closed after ${Date.now() - started} ms`)
    await closing
    assert.ok(Date.now() - started < 5000, `close() took ${Date.now() - started} ms`)
    server = undefined as unknown as RunningServer
  })
})
