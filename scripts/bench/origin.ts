/**
 * Origin benchmark: what the server's origin seeder spends per connected host and per HAVE as the number
 * of hosts connected to it grows. A rollout's HAVEs reach the origin from every host it is connected to,
 * one per piece (the origin asks for all of them: src/swarm/super-seed.ts), so its bookkeeping per HAVE is
 * multiplied by hosts x pieces; a cost per HAVE that grows with either makes the origin's CPU, not its
 * link, the limit of a large rollout.
 *
 * A real `rookery server` (pinned to one core) publishes a release of random data; bare BitTorrent peers
 * (bittorrent-protocol, as webtorrent uses, in this process on the other core) connect straight to its
 * origin seeder's port, say they have nothing (BEP 6 have-none) and unchoke it, as a webtorrent host does.
 * Then each announces every piece but the last as the pieces reach it from the swarm (front to back, as
 * rookery hosts fetch them, or with --order random in an order of its own), and finally asks for a byte of
 * the last and waits for it: the origin answers in order, so it has handled every HAVE by then. The
 * server's CPU (/proc) is read between the phases, once it is idle. Each row is a fresh server.
 * Printed: CPU per connecting host and per HAVE, each also as a ratio to the smallest fleet's in the same
 * run, CPU while the hosts leave, and the server's RSS with all of them connected.
 *
 *   npm run bench:origin -- [--hosts 100,400,1600] [--release-mib 255] [--order in-order|random] [--connect-concurrency 50]
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readTorrent } from '../../src/release/torrent.ts'
import { RawPeer } from '../../test/helpers/raw-peer.ts'
import { cpuSeconds, CORES, fmt, freePort, machineNote, mb, memory, printTable, publish, runBench, sleep, startServer, workDir } from './common.ts'

const { values: args } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100,400,1600' },
    'release-mib': { type: 'string', default: '255' },
    'connect-concurrency': { type: 'string', default: '50' },
    order: { type: 'string', default: 'in-order' },
  },
})
/** A bad option: one line saying which and what it wants, exit code 2. */
function usage(message: string): never {
  console.error(`bench:origin: ${message}`)
  process.exit(2)
}
const positive = (text: string, option: string, what: string): number => {
  const n = Number(text)
  return Number.isInteger(n) && n > 0 ? n : usage(`bad --${option} "${text}": want ${what}`)
}
const hostCounts = args.hosts.split(',').map((n) => positive(n, 'hosts', 'a comma-separated list of host counts, e.g. 100,400,1600'))
const releaseMiB = positive(args['release-mib'], 'release-mib', 'the release size in MiB, e.g. 255')
const concurrency = positive(args['connect-concurrency'], 'connect-concurrency', 'how many hosts connect at once, e.g. 50')
const order = args.order
if (order !== 'in-order' && order !== 'random') usage(`bad --order "${order}": want in-order (front to back, as rookery hosts fetch) or random`)

/** Resolves as `promise` does, or rejects after `ms` naming `what`: no step of the bench waits forever. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves once `peer` (a host with nothing, as the origin sees one) and the origin have said what they have. */
function hostReady(peer: RawPeer): Promise<void> {
  const ready = new Promise<void>((resolve, reject) => {
    // A super-seeding origin answers with have-none; anything else would be a plain seeder.
    peer.wire.once('have-none', () => resolve())
    peer.wire.once('bitfield', () => reject(new Error('the origin sent a bitfield: it is not super-seeding')))
    peer.socket.once('error', reject)
  })
  return within(ready, 30_000, 'a host\'s handshake with the origin')
}

/** Asks for the first byte of piece `index` and waits for it: the origin answers once it has read everything sent before. */
async function sync(peer: RawPeer, index: number): Promise<void> {
  if (peer.wire.peerChoking) {
    const unchoked = new Promise((resolve) => peer.wire.once('unchoke', resolve))
    peer.wire.interested()
    await within(unchoked, 60_000, 'the origin to unchoke a host')
  }
  await within(peer.request(index, 0, 1), 60_000, 'the origin to answer a host\'s request')
}

function shuffled(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order
}

/** The server's CPU seconds once it has been idle (under 2 % of a core) for 0.5 s. */
async function settledCpu(pid: number): Promise<number> {
  let last = await cpuSeconds(pid)
  for (let quiet = 0, i = 0; quiet < 5 && i < 600; i++) {
    await sleep(100)
    const now = await cpuSeconds(pid)
    quiet = now - last < 0.002 ? quiet + 1 : 0
    last = now
  }
  return last
}

interface Row {
  hosts: number
  pieces: number
  joinCpu: number
  spreadCpu: number
  spreadWall: number
  leaveCpu: number
  /** The server's RSS with every host connected, and before any connected. */
  rssJoined: number
  rssBefore: number
}

async function measure(dir: string, source: string, hosts: number): Promise<Row> {
  const torrentPort = await freePort()
  const server = await startServer(join(dir, `server-${hosts}`), { core: CORES.server, torrentPort })
  const { infohash, torrent_url } = await publish(server.url, source, 'web', 'v1')
  const info = await readTorrent(Buffer.from(await (await fetch(torrent_url)).arrayBuffer()))
  const pieces = Math.ceil(info.length / info.pieceLength)
  const peers: RawPeer[] = []
  try {
    const before = await settledCpu(server.proc.pid)
    const rssBefore = (await memory(server.proc.pid)).rss
    for (let i = 0; i < hosts; i += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, hosts - i) }, () => new RawPeer(torrentPort, infohash, true, pieces, { asEmptyHost: true }))
      peers.push(...batch)
      await Promise.all(batch.map(hostReady))
    }
    const joined = await settledCpu(server.proc.pid)
    const rssJoined = (await memory(server.proc.pid)).rss

    const started = performance.now()
    // Every piece but the last, which the peers then ask for: a peer announcing all of them would be a
    // seeder, and webtorrent chokes seeders (rejecting what they ask).
    const orders = peers.map(() => (order === 'in-order' ? Array.from({ length: pieces - 1 }, (_, i) => i) : shuffled(pieces - 1)))
    // Round by round, every peer announces one more piece: the pieces spread through the whole fleet at once.
    for (let round = 0; round < pieces - 1; round++) {
      for (let p = 0; p < peers.length; p++) peers[p]!.wire.have(orders[p]![round]!)
      if (round % 16 === 15) await new Promise((r) => setImmediate(r))
    }
    await Promise.all(peers.map((p) => sync(p, pieces - 1)))
    const spreadWall = (performance.now() - started) / 1000
    const spread = await settledCpu(server.proc.pid)

    for (const p of peers.splice(0)) p.close()
    const left = await settledCpu(server.proc.pid)
    return { hosts, pieces, joinCpu: joined - before, spreadCpu: spread - joined, spreadWall, leaveCpu: left - spread, rssJoined, rssBefore }
  } finally {
    for (const p of peers) p.close()
    await server.proc.stop()
  }
}

await runBench(async () => {
  console.log(machineNote())
  const dir = await workDir('origin')
  const source = join(dir, 'release')
  await mkdir(source, { recursive: true })
  await writeFile(join(source, 'data.bin'), randomBytes(releaseMiB * 1024 * 1024))
  const rows: Row[] = []
  for (const hosts of hostCounts) {
    const row = await measure(dir, source, hosts)
    rows.push(row)
    console.log(`# ${hosts} hosts, ${row.pieces} pieces: join ${row.joinCpu.toFixed(2)} CPU s, spread ${row.spreadCpu.toFixed(2)} CPU s in ${row.spreadWall.toFixed(1)} s, leave ${row.leaveCpu.toFixed(2)} CPU s`)
  }
  const base = rows[0]!
  const perJoin = (r: Row) => (r.joinCpu / r.hosts) * 1e6
  const haves = (r: Row) => r.hosts * (r.pieces - 1)
  const perHave = (r: Row) => (r.spreadCpu / haves(r)) * 1e6
  printTable([
    ['hosts connected to the origin', 'pieces', 'CPU per joining host', `x ${base.hosts} hosts'`, 'CPU per HAVE', `x ${base.hosts} hosts'`, 'HAVEs handled per s', 'leave, CPU s', 'server RSS, all joined', 'per host'],
    ...rows.map((r) => [fmt(r.hosts), fmt(r.pieces), `${fmt(perJoin(r))} us`, (perJoin(r) / perJoin(base)).toFixed(2), `${fmt(perHave(r), 1)} us`, (perHave(r) / perHave(base)).toFixed(2), fmt(haves(r) / r.spreadWall), r.leaveCpu.toFixed(2), mb(r.rssJoined), `${fmt((r.rssJoined - r.rssBefore) / r.hosts / 1024)} KiB`]),
  ])
  console.log('CPU: the server process (origin seeder, tracker, HTTP) between phases, read from /proc once idle; a flat')
  console.log('ratio means the cost per host and per HAVE does not grow with the fleet.')
})
