import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { ManifestPoller } from '../../src/agent/fetch.ts'
import { watchManifest } from '../../src/agent/watch.ts'
import { emptyManifest, serializeManifest } from '../../src/manifest/manifest.ts'

// A server scripted request by request: the long-poll client's side of the publishing hint.
test('a long-poll answer naming an uploading app calls onPublishing, and the next poll follows at once', { timeout: 20_000 }, async () => {
  const requests: Array<{ at: number; ifNoneMatch: string | undefined; url: string }> = []
  const answers: Array<(req: IncomingMessage, res: ServerResponse) => void> = [
    (_req, res) => res.writeHead(200, { etag: '"a"' }).end('{}'), // the first answer: the ETag to hold
    (_req, res) => void setTimeout(() => res.writeHead(304, { etag: '"a"', 'x-rookery-publishing': 'web; groups=canary' }).end(), 50), // an upload of web started, a canary rollout
    (_req, res) => void setTimeout(() => res.writeHead(200, { etag: '"b"' }).end('{"serial":2}'), 50), // published: the manifest changed
  ]
  const server = createServer((req, res) => {
    requests.push({ at: Date.now(), ifNoneMatch: req.headers['if-none-match'], url: req.url ?? '' })
    const answer = answers.shift()
    if (answer) answer(req, res)
    // Later polls are held until the test ends.
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const stop = new AbortController()
  const events: string[] = []
  let changed!: () => void
  const gotChange = new Promise<void>((resolve) => (changed = resolve))
  const watching = watchManifest({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/manifest`,
    longPollMs: 30_000,
    requestTimeoutMs: 5000,
    maxBytes: 1024,
    backoffMs: 1000,
    signal: stop.signal,
    onChange: (body, etag) => {
      events.push(`changed to ${etag} ${body.toString()}`)
      changed()
    },
    onPublishing: (upload) => events.push(`publishing ${JSON.stringify(upload)}`),
  })
  try {
    await gotChange
    assert.deepEqual(events, ['publishing {"app":"web","rollout":{"groups":["canary"]}}', 'changed to "b" {"serial":2}'])
    assert.equal(requests[1]!.ifNoneMatch, '"a"')
    assert.equal(requests[2]!.ifNoneMatch, '"a"', 'the hint is not a new manifest: the client keeps its ETag')
    assert.match(requests[2]!.url, /\?wait=30$/)
    // A 304 within a second of asking otherwise means "this server does not hold requests" and the client
    // waits long_poll (30 s here) before asking again; after a hint it must ask again at once.
    const gap = requests[2]!.at - requests[1]!.at
    assert.ok(gap < 1000, `the poll after the hint came ${gap} ms after the one before`)
  } finally {
    stop.abort()
    await watching
    server.closeAllConnections()
    server.close()
  }
})

test('the manifest the long-poll brought is used by the next poll without a request; a bad one is fetched instead', { timeout: 20_000 }, async () => {
  const doc = serializeManifest({ ...emptyManifest(), serial: 7 })
  let requests = 0
  const server = createServer((_req, res) => {
    requests++
    res.writeHead(200, { etag: '"fetched"' }).end(serializeManifest({ ...emptyManifest(), serial: 8 }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const poller = new ManifestPoller(`http://127.0.0.1:${(server.address() as AddressInfo).port}/manifest`, { timeoutMs: 5000, maxBytes: 1 << 20 })
    poller.offer(doc, '"offered"')
    assert.deepEqual(await poller.poll(), { manifest: { ...emptyManifest(), serial: 7 }, changed: true })
    assert.equal(requests, 0)
    // Used once: the next poll asks the server.
    assert.equal((await poller.poll()).manifest.serial, 8)
    assert.equal(requests, 1)
    // The same document again is no change.
    poller.offer(serializeManifest({ ...emptyManifest(), serial: 8 }), '"fetched"')
    assert.deepEqual(await poller.poll(), { manifest: { ...emptyManifest(), serial: 8 }, changed: false })
    assert.equal(requests, 1)
    // A document that is not a manifest is not taken: the poll fetches the server's.
    poller.offer(Buffer.from('{"not": "a manifest"}'), '"bad"')
    assert.equal((await poller.poll()).manifest.serial, 8)
    assert.equal(requests, 2)
  } finally {
    server.closeAllConnections()
    server.close()
  }
})
