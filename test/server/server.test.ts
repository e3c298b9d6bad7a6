import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { silentLogger } from '../../src/log.ts'
import { sha256File } from '../../src/release/hash.ts'
import { packDirectory } from '../../src/release/pack.ts'
import { readTorrent } from '../../src/release/torrent.ts'
import { serverConfigSchema } from '../../src/server/config.ts'
import { startServer, type RunningServer } from '../../src/server/server.ts'
import { freePort, waitFor } from '../helpers/processes.ts'
import { SlowUpload } from '../helpers/slow-upload.ts'

// The server in-process on a real port: publish API, manifest, torrents, webseed, tracker, retention, restart.

const TOKEN = 'server-test-token-0123456789'
const AGENT_TOKEN = 'agent-test-token-0123456789'
let root: string
let server: RunningServer
let base: string
let dataDir: string
let port: number
const tarballs = new Map<string, { path: string; sha256: string; size: number }>()

async function start(): Promise<RunningServer> {
  const config = serverConfigSchema.parse({
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    data_dir: dataDir,
    publish_tokens: [TOKEN],
    torrent_port: 0,
    keep_releases: 2,
    max_upload_size: '1MiB',
    agent_tokens: [AGENT_TOKEN],
  })
  const running = await startServer(config, silentLogger(), 'test')
  base = running.url
  return running
}

/** A tarball with distinct content per name. */
async function tarball(name: string) {
  const cached = tarballs.get(name)
  if (cached) return cached
  const dir = join(root, 'src', name)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'data.bin'), randomBytes(300_000))
  const path = join(root, `${name}.tar.gz`)
  await packDirectory(dir, path)
  const made = { path, sha256: await sha256File(path), size: (await stat(path)).size }
  tarballs.set(name, made)
  return made
}

function upload(tag: string, body: Buffer, headers: Record<string, string>, query = ''): Promise<Response> {
  return fetch(`${base}/api/v1/releases/web/${tag}${query}`, { method: 'PUT', body: new Uint8Array(body), headers })
}

async function publish(tag: string, content = tag, query = ''): Promise<Response> {
  const t = await tarball(content)
  return upload(tag, await readFile(t.path), { authorization: `Bearer ${TOKEN}`, 'x-rookery-sha256': t.sha256 }, query)
}

async function manifest() {
  return (await (await fetch(`${base}/manifest`)).json()) as {
    serial: number
    apps: Record<string, { current: string | null; releases: Array<{ tag: string; infohash: string; sha256: string; size: number; torrent_url: string; tarball_url: string }> }>
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-server-'))
  dataDir = join(root, 'data')
  port = await freePort()
  server = await start()
})

after(async () => {
  await server?.close()
  await rm(root, { recursive: true, force: true })
})

describe('publish API', () => {
  test('refuses a missing or wrong token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }] as Array<Record<string, string>>) {
      const res = await upload('v1', Buffer.from('x'), { 'x-rookery-sha256': 'a'.repeat(64), ...headers })
      assert.equal(res.status, 401)
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ROOKERY_UNAUTHORIZED')
    }
  })

  test('refuses a bad tag, a missing checksum and a checksum that does not match', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` }
    assert.equal((await upload('..', Buffer.from('x'), { ...auth, 'x-rookery-sha256': 'a'.repeat(64) })).status, 404)
    assert.equal((await upload('v%2F1', Buffer.from('x'), { ...auth, 'x-rookery-sha256': 'a'.repeat(64) })).status, 400)
    assert.equal((await upload('v1', Buffer.from('x'), auth)).status, 400)
    const res = await upload('v1', Buffer.from('not what was declared'), { ...auth, 'x-rookery-sha256': 'a'.repeat(64) })
    assert.equal(res.status, 422)
    assert.equal((await manifest()).apps.web, undefined)
    assert.deepEqual(await readdir(join(dataDir, 'incoming')), [], 'a refused upload left a file behind')
  })

  test('refuses bodies over max_upload_size, declared or not', async () => {
    const auth = { authorization: `Bearer ${TOKEN}`, 'x-rookery-sha256': 'a'.repeat(64) }
    const declared = await upload('big', Buffer.alloc(2 * 1024 * 1024), auth)
    assert.equal(declared.status, 413)
    // Chunked, no Content-Length: cut off while streaming.
    const body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512 * 1024))
        controller.close()
      },
    })
    const streamed = await fetch(`${base}/api/v1/releases/web/big`, { method: 'PUT', body, headers: auth, duplex: 'half' } as RequestInit)
    assert.equal(streamed.status, 413)
    assert.equal(((await streamed.json()) as { error: { code: string } }).error.code, 'ROOKERY_TOO_LARGE')
    assert.deepEqual(await readdir(join(dataDir, 'incoming')), [])
    const small = await fetch(`${base}/api/v1/apps/web/current`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(100_000) })
    assert.equal(small.status, 413)
  })

  test('publishes a release: manifest entry, torrent, webseed with Range', async () => {
    const res = await publish('v1')
    assert.equal(res.status, 201)
    const m = await manifest()
    assert.equal(m.apps.web?.current, 'v1')
    const entry = m.apps.web!.releases[0]!
    const t = await tarball('v1')
    assert.equal(entry.sha256, t.sha256)
    assert.equal(entry.size, t.size)

    const torrent = await readTorrent(Buffer.from(await (await fetch(entry.torrent_url)).arrayBuffer()))
    assert.equal(torrent.infoHash, entry.infohash)
    assert.equal(torrent.private, true)
    assert.deepEqual(torrent.announce, [`${base}/announce`])
    assert.deepEqual(torrent.urlList, [entry.tarball_url])

    const whole = Buffer.from(await (await fetch(entry.tarball_url)).arrayBuffer())
    assert.equal(createHash('sha256').update(whole).digest('hex'), t.sha256)
    const part = await fetch(entry.tarball_url, { headers: { range: 'bytes=100-199' } })
    assert.equal(part.status, 206)
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), whole.subarray(100, 200))
  })

  test('the same tag with the same content is a no-op; with other content it is refused', async () => {
    const before = (await manifest()).serial
    const same = await publish('v1')
    assert.equal(same.status, 200)
    assert.equal(((await same.json()) as { created: boolean }).created, false)
    assert.equal((await manifest()).serial, before)
    const other = await publish('v1', 'other-content')
    assert.equal(other.status, 409)
    assert.equal((await manifest()).apps.web?.releases[0]?.sha256, (await tarball('v1')).sha256)
  })
})

describe('manifest', () => {
  test('has a strong ETag and answers 304 to If-None-Match', async () => {
    const first = await fetch(`${base}/manifest`)
    const etag = first.headers.get('etag')!
    assert.match(etag, /^"[0-9a-f]{32}"$/)
    const again = await fetch(`${base}/manifest`, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)
    assert.equal(again.headers.get('etag'), etag)
    assert.equal(again.headers.get('cache-control'), 'no-cache')
    assert.equal((await again.arrayBuffer()).byteLength, 0)
    const listed = await fetch(`${base}/manifest`, { headers: { 'if-none-match': `"0000", ${etag}` } })
    assert.equal(listed.status, 304, 'an ETag among several')
    const metrics = await (await fetch(`${base}/metrics`)).text()
    assert.match(metrics, /rookery_manifest_requests_total\{status="304"\} [2-9]/)
    const stale = await fetch(`${base}/manifest`, { headers: { 'if-none-match': '"0000"' } })
    assert.equal(stale.status, 200)
  })
})

describe('tracker', () => {
  function announce(infohashHex: string) {
    const bin = (hex: string) => [...Buffer.from(hex, 'hex')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
    const peerId = bin(randomBytes(20).toString('hex'))
    return fetch(`${base}/announce?info_hash=${bin(infohashHex)}&peer_id=${peerId}&port=6881&left=0&compact=1&event=started`).then((r) => r.text())
  }

  test('tracks published torrents and refuses others', async () => {
    const published = (await manifest()).apps.web!.releases[0]!.infohash
    assert.match(await announce(published), /8:intervali\d+e/)
    assert.match(await announce(randomBytes(20).toString('hex')), /failure reason.*not published/)
  })
})

describe('rollback and retention', () => {
  test('rollback points current at a kept tag and refuses unknown ones', async () => {
    assert.equal((await publish('v2')).status, 201)
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
    const back = await fetch(`${base}/api/v1/apps/web/current`, { method: 'POST', headers: auth, body: JSON.stringify({ tag: 'v1' }) })
    assert.equal(back.status, 200)
    assert.deepEqual(await back.json(), { app: 'web', previous: 'v2', current: 'v1' })
    const unknown = await fetch(`${base}/api/v1/apps/web/current`, { method: 'POST', headers: auth, body: JSON.stringify({ tag: 'v9' }) })
    assert.equal(unknown.status, 404)
    const noAuth = await fetch(`${base}/api/v1/apps/web/current`, { method: 'POST', body: JSON.stringify({ tag: 'v2' }) })
    assert.equal(noAuth.status, 401)
    assert.equal((await manifest()).apps.web?.current, 'v1')
  })

  test('keeps the newest releases plus the current one, and deletes dropped files', async () => {
    // keep_releases is 2. v1 is current: publishing v3 without activating keeps v1, v2 and v3.
    assert.equal((await publish('v3', 'v3', '?activate=false')).status, 201)
    let m = await manifest()
    assert.equal(m.apps.web?.current, 'v1')
    assert.deepEqual(m.apps.web?.releases.map((r) => r.tag), ['v1', 'v2', 'v3'])
    // v4 becomes current: only v3 and v4 stay, on disk too.
    assert.equal((await publish('v4')).status, 201)
    m = await manifest()
    assert.equal(m.apps.web?.current, 'v4')
    assert.deepEqual(m.apps.web?.releases.map((r) => r.tag), ['v3', 'v4'])
    assert.deepEqual((await readdir(join(dataDir, 'releases', 'web'))).sort(), ['v3', 'v4'])
    assert.equal((await fetch(`${base}/releases/web/v1/web-v1.tar.gz`)).status, 404)
  })
})

describe('restart', () => {
  test('manifest and releases come back from data_dir', async () => {
    const before = await manifest()
    await server.close()
    server = await start()
    const after = await manifest()
    assert.equal(after.serial, before.serial)
    assert.deepEqual(after.apps, before.apps)
    const entry = after.apps.web!.releases.at(-1)!
    assert.equal((await fetch(entry.tarball_url)).status, 200)
    // The origin seeder is back too: it announces every kept release to the tracker as a seeder.
    const seeded = async () => {
      const stats = (await (await fetch(`${base}/api/v1/stats`)).json()) as { swarms: Array<{ infoHash: string; complete: number }> }
      return after.apps.web!.releases.every((r) => stats.swarms.some((s) => s.infoHash === r.infohash && s.complete >= 1))
    }
    await waitFor('the origin seeder to announce every kept release', seeded, 10_000)
  })
})

describe('manifest long-poll', () => {
  test('?wait holds a request whose ETag is current until the manifest changes', async () => {
    const etag = (await fetch(`${base}/manifest`)).headers.get('etag')!
    const started = Date.now()
    const held = fetch(`${base}/manifest?wait=20`, { headers: { 'if-none-match': etag } })
    await new Promise((r) => setTimeout(r, 500))
    // Not activated (nor a staged rollout): no "being published" answer first, just the manifest change.
    assert.equal((await publish('lp1', 'lp1', '?activate=false')).status, 201)
    const res = await held
    assert.equal(res.status, 200)
    assert.notEqual(res.headers.get('etag'), etag)
    assert.ok(((await res.json()) as { apps: { web: { releases: Array<{ tag: string }> } } }).apps.web.releases.some((r) => r.tag === 'lp1'))
    assert.ok(Date.now() - started < 5000)
  })

  test('?wait is answered, naming the app, when an upload that activates starts; then held until it is published', async () => {
    const etag = (await fetch(`${base}/manifest`)).headers.get('etag')!
    const held = fetch(`${base}/manifest?wait=20`, { headers: { 'if-none-match': etag } })
    await new Promise((r) => setTimeout(r, 300))
    // A staged rollout names its cohort: each host tells whether it is in it.
    assert.equal((await publish('lp-canary', 'lp-canary', '?rollout_percent=10&rollout_group=canary')).status, 201)
    const afterCanary = await held
    assert.equal(afterCanary.status, 304)
    assert.equal(afterCanary.headers.get('x-rookery-publishing'), 'web; percent=10; groups=canary')
    const etag2 = (await fetch(`${base}/manifest`)).headers.get('etag')!
    assert.notEqual(etag2, etag)

    const held2 = fetch(`${base}/manifest?wait=20`, { headers: { 'if-none-match': etag2 } })
    await new Promise((r) => setTimeout(r, 300))
    const t = await tarball('lp2')
    const body = await readFile(t.path)
    const uploading = new SlowUpload(base, TOKEN, 'web/lp2', body, t.sha256) // started; the rest comes later
    const hinted = await held2
    assert.equal(hinted.status, 304)
    assert.equal(hinted.headers.get('x-rookery-publishing'), 'web')
    assert.equal(hinted.headers.get('etag'), etag2, 'not published yet')
    const held3 = fetch(`${base}/manifest?wait=20`, { headers: { 'if-none-match': etag2 } })
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(await uploading.finish(), 201)
    const published = await held3
    assert.equal(published.status, 200)
    assert.equal(published.headers.get('x-rookery-publishing'), null)
    assert.ok(((await published.json()) as { apps: { web: { current: string } } }).apps.web.current === 'lp2')
  })

  test('?wait answers 304 when the wait is over, and at once for a stale ETag', async () => {
    const etag = (await fetch(`${base}/manifest`)).headers.get('etag')!
    let started = Date.now()
    const timedOut = await fetch(`${base}/manifest?wait=1`, { headers: { 'if-none-match': etag } })
    assert.equal(timedOut.status, 304)
    assert.ok(Date.now() - started >= 900, 'answered before the wait was over')
    started = Date.now()
    const stale = await fetch(`${base}/manifest?wait=20`, { headers: { 'if-none-match': '"stale"' } })
    assert.equal(stale.status, 200)
    assert.ok(Date.now() - started < 1000)
  })
})

describe('agent reports', () => {
  const post = (body: string, token?: string) =>
    fetch(`${base}/api/v1/reports`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } })
  test('need an agent token when the server sets agent_tokens (the publish token is not one)', async () => {
    const current = (await manifest()).apps.web!.current
    const good = JSON.stringify({ host: 'h1', app: 'web', tag: current, phase: 'activated', current })
    assert.equal((await post(good)).status, 401)
    assert.equal((await post(good, TOKEN)).status, 401)
    assert.equal((await post(good, AGENT_TOKEN)).status, 204)
    const status = (await (await fetch(`${base}/api/v1/status?app=web`)).json()) as { apps: { web: { hosts: Array<{ host: string; state: string }> } } }
    assert.deepEqual(status.apps.web.hosts.map((h) => [h.host, h.state]), [['h1', 'activated']])
  })

  test('are validated and capped in size', async () => {
    const bad = await post(JSON.stringify({ host: 'h1', app: 'web', tag: 'v4', phase: 'exploded', current: null }), AGENT_TOKEN)
    assert.equal(bad.status, 400)
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /phase/)
    assert.equal((await post('not json', AGENT_TOKEN)).status, 400)
    assert.equal((await post(JSON.stringify({ host: 'h1', app: 'web', tag: 'v4', phase: 'failed', current: null, error: 'x'.repeat(20_000) }), AGENT_TOKEN)).status, 413)
  })
})
