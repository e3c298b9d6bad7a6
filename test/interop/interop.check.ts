/**
 * Interop with the BitTorrent ecosystem, with real processes and Debian's tools (aria2, opentracker,
 * python3-libtorrent): not part of `npm test` (which must run without them); run by `npm run test:interop`
 * and in .ci/run, which installs the packages.
 *
 * 1. A torrent made by `rookery publish` downloads completely with aria2c through the rookery tracker,
 *    seeded by the server's origin seeder (the webseed is taken out of aria2's copy of the .torrent, which
 *    does not change the infohash), and libtorrent computes the manifest's infohash for the same tarball.
 * 2. A rookery agent completes a deploy when the tracker is opentracker (server `announce_url`), with the
 *    webseed fallback far away: the data comes from the origin seeder found through opentracker.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { stagePackage } from '../../scripts/staged-package.ts'
import { readTorrent } from '../../src/release/torrent.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'
import { Daemon, freePort, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

const TOKEN = 'interop-token-0123456789abcdef'
const DEBIAN_PYTHON = '/usr/bin/python3'
const LT_INFOHASH = fileURLToPath(new URL('./libtorrent-infohash.py', import.meta.url))
const RELEASE_BYTES = 12 * 1024 * 1024

let root: string
const stops: Array<() => Promise<unknown>> = []

before(async () => {
  const missing = [
    ['aria2c', 'aria2'],
    ['opentracker', 'opentracker'],
  ].filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0)
  if (spawnSync(DEBIAN_PYTHON, ['-c', 'import libtorrent']).status !== 0) missing.push(['python3 libtorrent', 'python3-libtorrent'])
  assert.deepEqual(missing, [], `install the Debian packages: apt-get install -y ${missing.map(([, p]) => p).join(' ')}`)
  root = await mkdtemp(join(tmpdir(), 'rookery-interop-'))
})

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  if (process.env.ROOKERY_KEEP_TEST_DIR) console.log(`test files kept in ${root}`)
  else if (root) await rm(root, { recursive: true, force: true })
})

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

interface Release {
  tag: string
  infohash: string
  sha256: string
  size: number
  torrent_url: string
  tarball_url: string
}

async function manifestRelease(url: string, tag: string): Promise<Release> {
  const manifest = (await (await fetch(`${url}/manifest`)).json()) as { apps: Record<string, { releases: Release[] }> }
  const release = manifest.apps.web?.releases.find((r) => r.tag === tag)
  assert.ok(release, `web ${tag} is in the manifest`)
  return release
}

async function stats(url: string): Promise<{ webseed_bytes: number; origin_seeder_uploaded_bytes: number; swarms: Array<{ infoHash: string; complete: number; incomplete: number }> }> {
  return (await (await fetch(`${url}/api/v1/stats`)).json()) as never
}

/** Runs a command to completion with a time limit; resolves with its exit code and output. */
function runCommand(argv: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d))
    child.stderr.on('data', (d: Buffer) => (output += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

test('aria2c downloads a rookery torrent through the rookery tracker; libtorrent computes the same infohash', async () => {
  const dir = join(root, 'aria2')
  await mkdir(dir, { recursive: true })
  const { server, url } = await startServerProcess(dir, TOKEN)
  stops.push(() => server.stop())
  const source = join(dir, 'source')
  await makeReleaseTree(source, RELEASE_BYTES, '#!/bin/sh\n')
  await publishRelease(url, TOKEN, source, 'v1')
  const release = await manifestRelease(url, 'v1')

  const torrentBuf = Buffer.from(await (await fetch(release.torrent_url)).arrayBuffer())
  const info = await readTorrent(torrentBuf)
  assert.equal(info.infoHash, release.infohash)
  assert.deepEqual(info.announce, [`${url}/announce`])
  // aria2 also uses a torrent's url-list (BEP 19) and would take everything from the webseed on loopback:
  // without it, the data must come from peers the tracker names. The infohash does not cover url-list.
  assert.deepEqual(info.urlList, [release.tarball_url])
  const urlList = `8:url-listl${Buffer.byteLength(release.tarball_url)}:${release.tarball_url}e`
  const raw = torrentBuf.toString('latin1')
  assert.ok(raw.includes(urlList), 'the .torrent has the url-list entry')
  const peersOnly = join(dir, 'peers-only.torrent')
  await writeFile(peersOnly, Buffer.from(raw.replace(urlList, ''), 'latin1'))
  const stripped = await readTorrent(await readFile(peersOnly))
  assert.equal(stripped.infoHash, release.infohash)
  assert.deepEqual(stripped.urlList, [])

  const before = await stats(url)
  const downloads = join(dir, 'downloads')
  const result = await runCommand([
    'aria2c',
    `--dir=${downloads}`,
    '--seed-time=0', // exit once complete
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--disable-ipv6=true',
    `--listen-port=${await freePort()}`,
    '--file-allocation=none',
    '--console-log-level=warn',
    '--summary-interval=0',
    '--show-console-readout=false',
    `--log=${join(dir, 'aria2c.log')}`,
    '--log-level=info',
    peersOnly,
  ], 60_000)
  assert.equal(result.code, 0, `aria2c failed (${result.code}): ${result.output.slice(-2000)}; log: ${(await readFile(join(dir, 'aria2c.log'), 'utf8').catch(() => '')).slice(-4000)}`)
  const file = join(downloads, info.name)
  assert.equal((await stat(file)).size, release.size)
  assert.equal(await sha256(file), release.sha256, 'aria2c got the published bytes')
  const after = await stats(url)
  assert.equal(after.webseed_bytes, before.webseed_bytes, 'nothing came from the webseed')
  assert.ok(after.origin_seeder_uploaded_bytes - before.origin_seeder_uploaded_bytes >= release.size, `the origin seeder sent the release (${after.origin_seeder_uploaded_bytes - before.origin_seeder_uploaded_bytes} bytes)`)

  // libtorrent makes a v1 torrent of the same file with the same piece length, name and private flag.
  const lt = spawnSync(DEBIAN_PYTHON, [LT_INFOHASH, file, String(info.pieceLength), info.private ? '1' : '0', join(dir, 'peers-only.torrent')], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(lt.status, 0, `libtorrent script failed: ${lt.stderr}`)
  const [ltMade, ltRead] = lt.stdout.trim().split('\n')
  assert.equal(ltMade, release.infohash, 'libtorrent computes the manifest infohash for the tarball')
  assert.equal(ltRead, release.infohash, 'libtorrent reads the same infohash from the .torrent')
  console.log(`# aria2c: ${release.size} bytes via the rookery tracker and origin seeder; infohash ${release.infohash} (piece length ${info.pieceLength}, private ${info.private}) matches libtorrent`)
})

test('a rookery agent, as packaged, deploys with opentracker as the tracker (server announce_url)', async () => {
  const dir = join(root, 'opentracker')
  const otDir = join(dir, 'ot')
  await mkdir(otDir, { recursive: true })
  // Debian's opentracker is built in whitelist mode and chroots to -d: the whitelist path is inside it.
  await writeFile(join(otDir, 'whitelist'), '')
  const otPort = await freePort()
  const announceUrl = `http://127.0.0.1:${otPort}/announce`
  const ot = spawn('opentracker', ['-i', '127.0.0.1', '-p', String(otPort), '-P', String(otPort), '-d', otDir, '-w', '/whitelist'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let otOutput = ''
  ot.stdout.on('data', (d: Buffer) => (otOutput += d))
  ot.stderr.on('data', (d: Buffer) => (otOutput += d))
  const otExited = new Promise((r) => ot.on('exit', r))
  stops.push(async () => {
    ot.kill('SIGTERM')
    await otExited
  })

  const { server, url } = await startServerProcess(dir, TOKEN, [`announce_url: ${announceUrl}`, 'announce_interval: 5s'])
  stops.push(() => server.stop())
  const source = join(dir, 'source')
  await makeReleaseTree(source, RELEASE_BYTES, '#!/bin/sh\n')
  await publishRelease(url, TOKEN, source, 'v1')
  const release = await manifestRelease(url, 'v1')
  const info = await readTorrent(Buffer.from(await (await fetch(release.torrent_url)).arrayBuffer()))
  assert.deepEqual(info.announce, [announceUrl], 'the torrent names opentracker')

  // What an operator does after a publish: whitelist the infohash, and SIGHUP makes opentracker reread it.
  await writeFile(join(otDir, 'whitelist'), `${release.infohash}\n`)
  ot.kill('SIGHUP')
  const announce = (infohash: string) => {
    const pct = [...Buffer.from(infohash, 'hex')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
    return fetch(`${announceUrl}?info_hash=${pct}&peer_id=-XX0001-interop00000&port=1&uploaded=0&downloaded=0&left=0&compact=1&event=stopped`).then((r) => r.text())
  }
  await waitFor('opentracker to accept the whitelisted infohash', async () => !(await announce(release.infohash)).includes('failure'), 10_000)
  assert.ok(ot.exitCode === null, `opentracker is running: ${otOutput}`)

  // The agent as the .deb/.rpm run it: its bundle announces over its own node:http fetch
  // (src/swarm/http-fetch.ts), so this is where that meets a tracker rookery did not write.
  const launcher = await stagePackage(dir)
  const config = await writeAgentConfig(dir, 'host1', url, ['webseed_fallback: 10m', 'stall_timeout: 5m'])
  const agent = new Daemon(['agent', '--config', config], join(dir, 'host1.log'), launcher.env.agent, launcher.agentCommand)
  stops.push(() => agent.stop())
  const current = join(deployDir(dir, 'host1'), 'current')
  await waitFor('the agent to activate v1 through opentracker', () => readlink(current).then((t) => t.endsWith('v1'), () => false), 120_000, 250).catch(async (err: Error) => {
    throw new Error(`${err.message}\nagent log:\n${(await readFile(agent.logFile, 'utf8')).slice(-3000)}\nserver log:\n${(await readFile(join(dir, 'server.log'), 'utf8')).slice(-3000)}`)
  })
  assert.deepEqual(await treeDigest(current + '/'), await treeDigest(source), 'the host has the published files')

  const complete = (await agent.logLines()).find((l) => l.msg === 'download complete')
  assert.ok(complete, 'the agent logged its download')
  assert.equal(complete.from_webseed, 0, 'nothing from the webseed')
  assert.equal(complete.from_peers, release.size, 'everything from peers')
  const s = await stats(url)
  assert.equal(s.webseed_bytes, 0)
  assert.ok(s.origin_seeder_uploaded_bytes >= release.size, 'the origin seeder, found through opentracker, sent the release')
  const ownSwarm = s.swarms.find((w) => w.infoHash === release.infohash)
  assert.equal((ownSwarm?.complete ?? 0) + (ownSwarm?.incomplete ?? 0), 0, "rookery's own tracker saw no peers: opentracker did the tracking")
  console.log(`# agent deployed ${release.size} bytes with opentracker as the tracker, all from peers`)
})
