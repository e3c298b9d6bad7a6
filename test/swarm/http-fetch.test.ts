import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import { fetchSubset } from '../../src/swarm/http-fetch.ts'

// The fetch the package's bundle gives webtorrent and bittorrent-tracker (scripts/package.ts), against a
// real HTTP server on loopback.

let server: Server
let base: string
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = []
const BODY = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251))

before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    if (req.url === '/range') {
      const [, start, end] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '') ?? []
      if (start === undefined) return void res.writeHead(200).end(BODY)
      return void res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${BODY.length}` }).end(BODY.subarray(Number(start), Number(end) + 1))
    }
    if (req.url === '/moved') return void res.writeHead(302, { location: '/range' }).end()
    if (req.url === '/loop') return void res.writeHead(301, { location: '/loop' }).end()
    if (req.url === '/missing') return void res.writeHead(404).end('no such thing')
    if (req.url === '/slow') return void res.writeHead(200).write('part') // never ends
    res.writeHead(500).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})

after(() => {
  server.closeAllConnections()
  server.close()
})

test('a range GET sends the headers and returns status, headers and exactly the bytes asked for', async () => {
  const res = await fetchSubset(`${base}/range`, { method: 'GET', headers: { range: 'bytes=1000-17383', 'user-agent': 'WebTorrent/test' } })
  assert.equal(res.status, 206)
  assert.equal(res.ok, true)
  assert.equal(res.headers.get('Content-Range'), `bytes 1000-17383/${BODY.length}`)
  assert.equal(res.headers.get('x-absent'), null)
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), BODY.subarray(1000, 17384))
  const request = seen.at(-1)!
  assert.equal(request.headers.range, 'bytes=1000-17383')
  assert.equal(request.headers['user-agent'], 'WebTorrent/test')
})

test('a 404 is a response that is not ok, with its body, not an error', async () => {
  const res = await fetchSubset(`${base}/missing`)
  assert.equal(res.status, 404)
  assert.equal(res.ok, false)
  assert.equal(Buffer.from(await res.arrayBuffer()).toString(), 'no such thing')
})

test('redirects are followed, as fetch does; a redirect loop ends with an error', async () => {
  const res = await fetchSubset(`${base}/moved`)
  assert.equal(res.status, 200)
  assert.equal(res.url, `${base}/range`)
  assert.equal((await res.arrayBuffer()).byteLength, BODY.length)
  await assert.rejects(fetchSubset(`${base}/loop`), /more than 20 redirects/)
})

test('the signal aborts a body that never ends, and a refused connection rejects', async () => {
  const res = await fetchSubset(`${base}/slow`, { signal: AbortSignal.timeout(300) })
  assert.equal(res.status, 200)
  const started = Date.now()
  await assert.rejects(res.arrayBuffer(), (err: Error) => err.name === 'AbortError' || /abort/i.test(err.message))
  assert.ok(Date.now() - started < 5000)
  const closed = createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const port = (closed.address() as { port: number }).port
  await new Promise((r) => closed.close(r))
  await assert.rejects(fetchSubset(`http://127.0.0.1:${port}/announce`), /ECONNREFUSED/)
})

test('what the subset does not do fails loudly: other methods, other URL schemes', async () => {
  await assert.rejects(fetchSubset(`${base}/range`, { method: 'POST' }), /only GET/)
  await assert.rejects(fetchSubset('ftp://127.0.0.1/x'), /ftp: URLs are not supported/)
})
