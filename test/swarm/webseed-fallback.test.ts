import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { startDownload, type WebseedFallback } from '../../src/swarm/download.ts'
import { WANTS_EVERY_HAVE } from '../../src/swarm/redundant-haves.ts'
import { RawPeer } from '../helpers/raw-peer.ts'
import { SwarmClients, writeSeedFile } from '../helpers/swarm-clients.ts'

// When a download falls back to the server's HTTP webseed: when the swarm gives it nothing and is still (no
// peer announced a piece), not while other hosts are getting pieces, as at the start of a large rollout,
// when the origin seeder feeds a few hosts first (src/swarm/super-seed.ts).

const KiB = 1024
const PIECES = 2
const CONTENT = randomBytes(PIECES * 256 * KiB)
const NAME = 'app-v1.tar.gz'
/** A second release, of 12 pieces: a peer announcing a new piece every 200 ms for 2 s needs 10. */
const LONGER = randomBytes(12 * 256 * KiB)
const LONGER_NAME = 'app-v2.tar.gz'

let tmp = ''
let webseed: Server
let webseedRequests = 0
let firstWebseedRequestAt: number | undefined
let torrentFile: Buffer
let infoHash = ''
let longer: { torrent: Buffer; infoHash: string }
const peers: RawPeer[] = []

const clients = new SwarmClients()
const swarmClient = () => clients.create()

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-webseed-fallback-'))
  // The webseed: the files with HTTP ranges, as the server serves them, counting requests.
  webseed = createServer((req, res) => {
    webseedRequests++
    firstWebseedRequestAt ??= Date.now()
    const body = req.url === `/${LONGER_NAME}` ? LONGER : CONTENT
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    if (!range) return void res.writeHead(200, { 'content-length': body.length }).end(body)
    const [from, to] = [Number(range[1]), Number(range[2])]
    res.writeHead(206, { 'content-length': to - from + 1, 'content-range': `bytes ${from}-${to}/${body.length}` }).end(body.subarray(from, to + 1))
  })
  await new Promise<void>((resolve) => webseed.listen(0, '127.0.0.1', resolve))
  const port = (webseed.address() as { port: number }).port
  // The tests connect peers directly.
  const made = await writeSeedFile(join(tmp, 'seed'), NAME, CONTENT, { webseed: `http://127.0.0.1:${port}/${NAME}`, pieceLength: 256 * KiB })
  torrentFile = made.torrent
  infoHash = made.infoHash
  longer = await writeSeedFile(join(tmp, 'seed'), LONGER_NAME, LONGER, { webseed: `http://127.0.0.1:${port}/${LONGER_NAME}`, pieceLength: 256 * KiB })
})

after(async () => {
  for (const p of peers) p.close()
  await clients.destroyAll()
  webseed.close()
  await rm(tmp, { recursive: true, force: true })
})

test('with no peer at all, the download falls back to the webseed after webseed_fallback', { timeout: 30_000 }, async () => {
  const before = webseedRequests
  const started = Date.now()
  const fallbacks: WebseedFallback[] = []
  const download = await startDownload(await swarmClient(), torrentFile, { dir: join(tmp, 'alone'), stallTimeoutMs: 20_000, webseedFallbackMs: 500, onWebseedFallback: (f) => fallbacks.push(f) })
  await download.done
  assert.equal(fallbacks.length, 1, 'the fallback was reported once')
  assert.equal(fallbacks[0]!.peers, 0)
  assert.equal(fallbacks[0]!.origin, false)
  assert.ok(fallbacks[0]!.quietMs >= 500, `reported after ${fallbacks[0]!.quietMs} ms of quiet`)
  assert.ok(Date.now() - started >= 500, 'the webseed was used before the fallback time')
  assert.ok(webseedRequests > before, 'no request reached the webseed')
  // The watchdog looks once a second here: the first look after 500 ms adds the webseed, not the second.
  assert.ok(firstWebseedRequestAt! - started < 1900, `the webseed was first asked ${firstWebseedRequestAt! - started} ms after the start`)
  assert.equal(download.traffic().fromWebseed, CONTENT.length)
})

test('while peers announce pieces, the download waits for them; once they fall silent, it takes the webseed', { timeout: 30_000 }, async () => {
  const before = webseedRequests
  const client = await swarmClient()
  const download = await startDownload(client, longer.torrent, { dir: join(tmp, 'announced'), stallTimeoutMs: 20_000, webseedFallbackMs: 500 })
  // A host that is getting the release from elsewhere: it announces a new piece every 200 ms, serves nothing.
  const host = new RawPeer(client.torrentPort, longer.infoHash, true, 12)
  peers.push(host)
  let next = 0
  const announcing = setInterval(() => host.wire.have(next++), 200)
  await new Promise((r) => setTimeout(r, 2000))
  clearInterval(announcing)
  assert.ok(!download.torrent.wires.some((w) => w.type === 'webSeed'), 'the webseed was added while a peer announced pieces')
  assert.equal(webseedRequests, before)
  host.close()
  await download.done
  assert.ok(webseedRequests > before)
  assert.equal(download.traffic().fromWebseed, LONGER.length)
})

test('the fallback says how many peers were connected and whether the origin was one of them', { timeout: 30_000 }, async () => {
  const client = await swarmClient()
  const fallbacks: WebseedFallback[] = []
  const download = await startDownload(client, torrentFile, { dir: join(tmp, 'silent-origin'), stallTimeoutMs: 20_000, webseedFallbackMs: 500, onWebseedFallback: (f) => fallbacks.push(f) })
  // An origin that is connected but sends nothing (no offers): it asks for every HAVE, as rookery's does.
  const origin = new RawPeer(client.torrentPort, infoHash, true, PIECES, { extendedHandshake: { [WANTS_EVERY_HAVE]: 1 } })
  peers.push(origin)
  await download.done
  assert.equal(fallbacks.length, 1)
  assert.equal(fallbacks[0]!.peers, 1)
  assert.equal(fallbacks[0]!.origin, true)
})
