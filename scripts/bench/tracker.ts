/**
 * Tracker benchmark: announces per second against rookery's /announce and against opentracker (Debian,
 * whitelist mode) with the same load: one published infohash, peer ids drawn at random from a fixed pool
 * (each with its own port), compact=1, numwant=50, a new connection per announce (opentracker closes every
 * connection after its answer, and a real client announces once per interval; rookery with keep-alive is
 * shown too, for information). The tracker runs on one core,
 * wrk on the other; rounds alternate the two and the best round of each counts. Each answer is checked
 * (HTTP 200 and a bencoded `peers` string) by wrk's Lua script. Prints the ratio.
 *
 *   npm run bench:tracker -- [--seconds 10] [--connections 50] [--rounds 2] [--peers 1000]
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { CORES, ensureDebianTools, fmt, freePort, machineNote, printTable, Proc, publish, runBench, startServer, waitFor, workDir, wrk, type WrkResult } from './common.ts'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    peers: { type: 'string', default: '1000' },
  },
})

const pct = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')

/** wrk's Lua script: a fixed pool of (peer_id, port) queries, picked at random; counts bad answers. */
function luaScript(infohash: string, peers: number): string {
  const ih = pct(Buffer.from(infohash, 'hex'))
  const pool: string[] = []
  for (let i = 0; i < peers; i++) {
    const peerId = pct(Buffer.from(`-BN0001-${String(i).padStart(12, '0')}`))
    pool.push(`"/announce?info_hash=${ih}&peer_id=${peerId}&port=${10_000 + i}&uploaded=0&downloaded=0&left=1048576&compact=1&numwant=50"`)
  }
  return `
local pool = { ${pool.join(',\n')} }
local bad = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) math.randomseed(os.time()) end
function request() return wrk.format("GET", pool[math.random(#pool)]) end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "5:peers", 1, true) then
    bad = bad + 1
    if bad == 1 then io.stderr:write("first bad answer: " .. status .. " " .. string.sub(body, 1, 200) .. "\\n") end
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
  io.write("bad answers: " .. total .. "\\n")
end
`
}

/** One announce, decoded enough to say how many compact peers came back. */
async function sampleAnnounce(base: string, infohash: string): Promise<number> {
  const query = `info_hash=${pct(Buffer.from(infohash, 'hex'))}&peer_id=${pct(Buffer.from('-BN0001-sample000000'))}&port=9999&uploaded=0&downloaded=0&left=1&compact=1&numwant=50`
  const res = await fetch(`${base}?${query}`)
  const body = Buffer.from(await res.arrayBuffer())
  const at = body.indexOf('5:peers')
  if (res.status !== 200 || at < 0) throw new Error(`announce to ${base} answered ${res.status}: ${body.toString('latin1').slice(0, 200)}`)
  const lenText = /^(\d+):/.exec(body.subarray(at + 7, at + 20).toString('latin1'))?.[1]
  return Number(lenText) / 6
}

async function startOpentracker(dir: string, infohash: string): Promise<{ proc: Proc; url: string }> {
  await mkdir(dir, { recursive: true })
  // Debian's build is in whitelist mode and chroots to -d: the whitelist path is inside that directory.
  await writeFile(join(dir, 'whitelist'), `${infohash}\n`)
  const port = await freePort()
  const proc = new Proc(['opentracker', '-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-d', dir, '-w', '/whitelist'], join(dir, '..', 'opentracker.log'), { core: CORES.server })
  const url = `http://127.0.0.1:${port}/announce`
  await waitFor('opentracker to answer', () => sampleAnnounce(url, infohash).then(() => true), 10_000)
  return { proc, url }
}

await runBench(async () => {
  ensureDebianTools({ wrk: 'wrk', opentracker: 'opentracker' })
  console.log(machineNote())
  const dir = await workDir('tracker')
  const server = await startServer(join(dir, 'rookery'), { core: CORES.server })
  const source = join(dir, 'src')
  await mkdir(source)
  await writeFile(join(source, 'app.txt'), 'hello\n')
  const { infohash } = await publish(server.url, source, 'web', 'v1')
  const ot = await startOpentracker(join(dir, 'ot'), infohash)
  const rookeryUrl = `${server.url}/announce`
  const script = join(dir, 'announce.lua')
  await writeFile(script, luaScript(infohash, Number(args.peers)))
  const opts = { seconds: Number(args.seconds), connections: Number(args.connections), script, headers: ['Connection: close'] }
  console.log(`# infohash ${infohash}, ${args.peers} peers in the pool (one IP, one port each), numwant=50, compact=1; tracker on core ${CORES.server}, wrk on core ${CORES.load} (-t1 -c${args.connections}), ${args.seconds} s per run, best of ${args.rounds} alternating rounds`)

  // Fill both swarms with the whole pool first, so every measured announce answers a full peer list.
  for (const url of [ot.url, rookeryUrl]) wrk(url, { ...opts, seconds: 3 })
  const peersBack = { opentracker: await sampleAnnounce(ot.url, infohash), rookery: await sampleAnnounce(rookeryUrl, infohash) }
  console.log(`# peers per answer after warm-up: opentracker ${peersBack.opentracker}, rookery ${peersBack.rookery}`)

  const best: Record<string, WrkResult | undefined> = {}
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const [who, url] of [['opentracker', ot.url], ['rookery', rookeryUrl]] as const) {
      const r = wrk(url, opts)
      console.log(`# round ${round + 1} ${who.padEnd(11)} ${fmt(r.rps)} announces/s, p50 ${r.p50}, p99 ${r.p99}${r.errors ? `, ${r.errors} errors (${r.errorText}): not counted` : ''}`)
      // A round with errors (e.g. a stall while other jobs hog the core) is shown but does not count.
      if (r.errors > 0) continue
      if (!best[who] || r.rps > best[who]!.rps) best[who] = r
    }
  }
  for (const who of ['opentracker', 'rookery']) if (!best[who]) throw new Error(`${who}: no round without errors; rerun with more --rounds when the machine is quieter`)
  const keepAlive = wrk(rookeryUrl, { ...opts, headers: [] })
  console.log(`# rookery with keep-alive connections: ${fmt(keepAlive.rps)} announces/s, p50 ${keepAlive.p50}`)
  const ratio = best.rookery!.rps / best.opentracker!.rps
  console.log()
  printTable([
    ['tracker', 'connections', 'announces/s', 'p50', 'p99', 'peers per answer'],
    ['opentracker', 'one per announce', fmt(best.opentracker!.rps), best.opentracker!.p50, best.opentracker!.p99, peersBack.opentracker],
    ['rookery', 'one per announce', fmt(best.rookery!.rps), best.rookery!.p50, best.rookery!.p99, peersBack.rookery],
    ['rookery', 'keep-alive', fmt(keepAlive.rps), keepAlive.p50, keepAlive.p99, peersBack.rookery],
  ])
  console.log(`\ntracker announces/s rookery/opentracker (one connection per announce): ${ratio.toFixed(2)} (reported; no target)`)
})
