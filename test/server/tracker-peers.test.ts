import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { Server as LibraryTracker } from 'bittorrent-tracker'
import { FleetTrackerServer } from '../../src/server/tracker-peers.ts'

// rookery's tracker answers compact announces from bytes kept per peer and a kept list of keys; these
// tests hold its answers against the library's own, and against joins, leaves, expiry and eviction.

type Tracker = InstanceType<typeof LibraryTracker>
const pct = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
const INFOHASH = pct(randomBytes(20))

/** A tracker mounted on its own HTTP server at `host`; returns its base URL. */
async function mount(tracker: Tracker, host = '127.0.0.1'): Promise<{ url: string; http: HttpServer }> {
  const http = createServer((req, res) => tracker.onHttpRequest(req, res, { action: 'announce' }))
  await new Promise<void>((resolve) => http.listen(0, host, resolve))
  const { port } = http.address() as AddressInfo
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, http }
}

/** Announces as the peer listening on `port`; returns the peers of the compact answer as "ip:port". */
async function announce(url: string, port: number, opts: { numwant?: number; event?: string } = {}): Promise<{ v4: string[]; v6: string[] }> {
  const peerId = pct(Buffer.from(`-TT0001-${String(port).padStart(12, '0')}`))
  const query = `info_hash=${INFOHASH}&peer_id=${peerId}&port=${port}&uploaded=0&downloaded=0&left=10&compact=1&numwant=${opts.numwant ?? 50}${opts.event ? `&event=${opts.event}` : ''}`
  const body = Buffer.from(await (await fetch(`${url}/announce?${query}`)).arrayBuffer())
  assert.ok(!body.includes('failure reason'), body.toString('latin1'))
  return { v4: decode(field(body, 'peers'), 4), v6: decode(field(body, 'peers6'), 16) }
}

/** The byte string under `key` in a bencoded dictionary (enough for a tracker's answer). */
function field(body: Buffer, key: string): Buffer {
  const at = body.indexOf(`${key.length}:${key}`)
  if (at < 0) return Buffer.alloc(0)
  const start = at + `${key.length}:${key}`.length
  const colon = body.indexOf(':', start)
  const length = Number(body.subarray(start, colon).toString('latin1'))
  return body.subarray(colon + 1, colon + 1 + length)
}

function decode(bytes: Buffer, addressLength: 4 | 16): string[] {
  const peers: string[] = []
  for (let i = 0; i + addressLength + 2 <= bytes.length; i += addressLength + 2) {
    const address = bytes.subarray(i, i + addressLength)
    const ip = addressLength === 4 ? [...address].join('.') : (address.toString('hex').match(/.{4}/g) ?? []).join(':')
    peers.push(`${ip}:${bytes.readUInt16BE(i + addressLength)}`)
  }
  return peers.sort()
}

const running: Array<{ tracker: Tracker; http: HttpServer }> = []
async function start(tracker: Tracker, host?: string): Promise<string> {
  const { url, http } = await mount(tracker, host)
  running.push({ tracker, http })
  return url
}

let ipv6 = false
before(async () => {
  // ::1 may be missing on a host with IPv6 turned off; the IPv6 case then says it was skipped.
  const probe = createServer()
  ipv6 = await new Promise<boolean>((resolve) => probe.once('error', () => resolve(false)).listen(0, '::1', () => probe.close(() => resolve(true))))
})

after(async () => {
  for (const { tracker, http } of running) {
    http.closeAllConnections()
    await new Promise((r) => http.close(r))
    await new Promise<void>((r) => tracker.close(() => r()))
  }
})

const options = { http: false, udp: false, ws: false, stats: false } as const

test('compact answers list the same peers as the library (IPv4)', async () => {
  const library = await start(new LibraryTracker(options))
  const fleet = await start(new FleetTrackerServer(options))
  for (let i = 0; i < 20; i++) {
    await announce(library, 10_000 + i, { event: 'started' })
    await announce(fleet, 10_000 + i, { event: 'started' })
  }
  const expected = Array.from({ length: 20 }, (_, i) => `127.0.0.1:${10_000 + i}`).sort()
  assert.deepEqual((await announce(library, 10_000, { numwant: 200 })).v4, expected)
  assert.deepEqual(await announce(fleet, 10_000, { numwant: 200 }), { v4: expected, v6: [] })
  // numwant caps the list with distinct peers of the swarm.
  const five = (await announce(fleet, 10_001, { numwant: 5 })).v4
  assert.equal(new Set(five).size, 5)
  for (const peer of five) assert.ok(expected.includes(peer), peer)
})

test('peers are picked at random: over many small answers every peer is listed', async () => {
  const url = await start(new FleetTrackerServer(options))
  for (let i = 0; i < 20; i++) await announce(url, 11_000 + i, { event: 'started' })
  const seen = new Set<string>()
  // A given peer missing from 80 answers of 5 out of 20 has a chance of 0.75^80, about 1e-10.
  for (let i = 0; i < 80; i++) for (const peer of (await announce(url, 11_000 + (i % 20), { numwant: 5 })).v4) seen.add(peer)
  assert.equal(seen.size, 20)
})

test('a peer that joins later is listed, one that stopped is not (the kept key list follows the swarm)', async () => {
  const url = await start(new FleetTrackerServer(options))
  for (let i = 0; i < 5; i++) await announce(url, 12_000 + i, { event: 'started' })
  await announce(url, 12_000) // the key list is now kept
  await announce(url, 12_005, { event: 'started' })
  assert.ok((await announce(url, 12_000)).v4.includes('127.0.0.1:12005'), 'a peer that joined after the list was kept is missing')
  await announce(url, 12_001, { event: 'stopped' })
  assert.deepEqual((await announce(url, 12_000)).v4, ['12000', '12002', '12003', '12004', '12005'].map((p) => `127.0.0.1:${p}`))
})

test('expired and evicted peers are not listed', async () => {
  const ttl = await start(new FleetTrackerServer({ ...options, peersCacheTtl: 300 }))
  await announce(ttl, 13_000, { event: 'started' })
  await announce(ttl, 13_001, { event: 'started' })
  await new Promise((r) => setTimeout(r, 500))
  assert.deepEqual((await announce(ttl, 13_002, { event: 'started' })).v4, ['127.0.0.1:13002'])

  const small = await start(new FleetTrackerServer({ ...options, peersCacheLength: 3 }))
  for (let i = 0; i < 4; i++) await announce(small, 14_000 + i, { event: 'started' })
  assert.deepEqual((await announce(small, 14_003)).v4, ['14001', '14002', '14003'].map((p) => `127.0.0.1:${p}`))
})

test('IPv6 peers go to peers6, as the library answers', async (t) => {
  if (!ipv6) return t.skip('no ::1 on this host')
  const library = await start(new LibraryTracker(options), '::1')
  const fleet = await start(new FleetTrackerServer(options), '::1')
  await announce(library, 15_000, { event: 'started' })
  await announce(fleet, 15_000, { event: 'started' })
  const expected = { v4: [], v6: ['0000:0000:0000:0000:0000:0000:0000:0001:15000'] }
  assert.deepEqual(await announce(library, 15_000), expected)
  assert.deepEqual(await announce(fleet, 15_000), expected)
})
