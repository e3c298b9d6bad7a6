/**
 * Simulated fleet load on one rookery server: N agents, each polling the manifest with If-None-Match
 * and announcing to the tracker at its own rate (with jitter), for a bounded time. Prints requests,
 * error rate and latency percentiles per kind.
 *
 *   npm run bench:load -- [--agents 200] [--seconds 60] [--poll 10] [--announce 30] [--fan-out 2000]
 *
 * Without --server it starts a server process of its own on loopback and publishes a small release.
 * With --fan-out N (own server only) it then measures a publish reaching N long-polling agents
 * (runFanOut): how long after `rookery publish` started each had the new release's .torrent.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'

export interface LoadOptions {
  server: string
  infohash: string
  agents: number
  durationMs: number
  pollEveryMs: number
  announceEveryMs: number
}

export interface KindStats {
  requests: number
  errors: number
  firstError?: string
  p50: number
  p90: number
  p99: number
  max: number
}

export interface LoadResult {
  poll: KindStats
  announce: KindStats
  notModified: number
}

/** Runs the simulated agents until the duration is over; every loop stops by itself. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: 4, keepAliveTimeout: 30_000 })
  const samples = { poll: [] as number[], announce: [] as number[] }
  const errors = { poll: 0, announce: 0 }
  const firstError: { poll?: string; announce?: string } = {}
  let notModified = 0
  const deadline = Date.now() + options.durationMs
  const infohash = Buffer.from(options.infohash, 'hex')

  const timed = async (kind: 'poll' | 'announce', run: () => Promise<boolean>) => {
    const started = performance.now()
    try {
      if (!(await run())) throw new Error('unexpected answer')
      samples[kind].push(performance.now() - started)
    } catch (err) {
      errors[kind]++
      firstError[kind] ??= (err as Error).message
    }
  }

  const simulate = async () => {
    let etag: string | undefined
    const peerId = Buffer.concat([Buffer.from('-RK0100-'), randomBytes(12)])
    const port = 10_000 + Math.floor(Math.random() * 50_000)
    const poll = () =>
      timed('poll', async () => {
        const res = await request(`${options.server}/manifest`, { dispatcher, headers: etag ? { 'if-none-match': etag } : {} })
        await res.body.dump()
        if (res.statusCode === 304) notModified++
        else if (res.statusCode === 200) etag = String(res.headers.etag)
        return res.statusCode === 200 || res.statusCode === 304
      })
    const announce = (event?: string) =>
      timed('announce', async () => {
        const query = `info_hash=${escape(infohash)}&peer_id=${escape(peerId)}&port=${port}&uploaded=0&downloaded=0&left=0&compact=1${event ? `&event=${event}` : ''}`
        const res = await request(`${options.server}/announce?${query}`, { dispatcher })
        const body = await res.body.text()
        return res.statusCode === 200 && body.includes('8:interval')
      })
    // Spread the fleet's first requests over one interval, as real agents starting at different times.
    const nextPoll = { at: Date.now() + Math.random() * options.pollEveryMs }
    const nextAnnounce = { at: Date.now() + Math.random() * options.announceEveryMs, first: true }
    while (Date.now() < deadline) {
      const now = Date.now()
      if (now >= nextPoll.at) {
        await poll()
        nextPoll.at = now + options.pollEveryMs * (0.9 + Math.random() * 0.2)
      }
      if (now >= nextAnnounce.at) {
        await announce(nextAnnounce.first ? 'started' : undefined)
        nextAnnounce.first = false
        nextAnnounce.at = now + options.announceEveryMs * (0.9 + Math.random() * 0.2)
      }
      const wait = Math.min(nextPoll.at, nextAnnounce.at, deadline) - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  }

  await Promise.all(Array.from({ length: options.agents }, simulate))
  await dispatcher.close()
  return {
    poll: summarize(samples.poll, errors.poll, firstError.poll),
    announce: summarize(samples.announce, errors.announce, firstError.announce),
    notModified,
  }
}

export interface FanOutResult {
  agents: number
  /** Agents that saw `tag` become current, then fetched its .torrent, within the bound. */
  informed: number
  errors: number
  firstError?: string
  /** Milliseconds from the start of the change (the rookery command) to each agent holding the .torrent. */
  latency: Omit<KindStats, 'requests' | 'errors' | 'firstError'>
}

/**
 * A change of the current release reaching a fleet that long-polls: `agents` simulated agents each hold
 * `GET /manifest?wait=30` with the current ETag, as the agent's watcher does (asking again at once after
 * an upload-started answer); then `change` runs (a publish, a rollback), and each agent, once an answer
 * says `tag` is current, fetches that release's .torrent. An agent fails if that takes until `timeoutMs`
 * after the start: below the 30 s wait, so held requests must be answered by the change, not by the wait.
 */
export async function runFanOut(options: { server: string; agents: number; tag: string; timeoutMs: number; change: () => Promise<void> }): Promise<FanOutResult> {
  // Every agent holds one request at a time: one connection each, as separate hosts would.
  const dispatcher = new Agent({ connections: options.agents + 8, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 })
  const first = await request(`${options.server}/manifest`, { dispatcher })
  const etag = String(first.headers.etag)
  await first.body.dump()
  const deadline = Date.now() + options.timeoutMs
  let changeAt = 0
  let errors = 0
  let firstError: string | undefined
  const latencies: number[] = []

  const agent = async (): Promise<void> => {
    let current = etag
    for (;;) {
      const res = await request(`${options.server}/manifest?wait=30`, { dispatcher, headers: { 'if-none-match': current } })
      if (Date.now() > deadline) throw new Error(`${options.tag} not current within ${options.timeoutMs} ms`)
      if (res.statusCode === 304) {
        await res.body.dump()
        continue // an upload started (or the wait ran out): ask again, as the agent's watcher does
      }
      if (res.statusCode !== 200) throw new Error(`manifest answered ${res.statusCode}`)
      current = String(res.headers.etag)
      const manifest = (await res.body.json()) as { apps: Record<string, { current: string | null; releases: Array<{ tag: string; torrent_url: string }> }> }
      const app = Object.values(manifest.apps).find((a) => a.current === options.tag)
      const release = app?.releases.find((r) => r.tag === options.tag)
      if (!release) continue
      const torrent = await request(release.torrent_url, { dispatcher })
      const bytes = Buffer.from(await torrent.body.arrayBuffer())
      if (torrent.statusCode !== 200 || bytes.length === 0) throw new Error(`${release.torrent_url} answered ${torrent.statusCode}`)
      latencies.push(Date.now() - changeAt)
      return
    }
  }
  const agents = Array.from({ length: options.agents }, () =>
    agent().catch((err: Error) => {
      errors++
      firstError ??= err.message
    }),
  )
  // Let the requests, all sent at once, reach the server and be held before the change.
  await new Promise((r) => setTimeout(r, 1000 + options.agents))
  changeAt = Date.now()
  try {
    await options.change()
  } finally {
    // Also when the change failed: the agents give up at the deadline, and their connections close.
    await Promise.all(agents)
    await dispatcher.close()
  }
  const { p50, p90, p99, max } = summarize(latencies, 0, undefined)
  return { agents: options.agents, informed: latencies.length, errors, ...(firstError ? { firstError } : {}), latency: { p50, p90, p99, max } }
}

export function formatFanOut(r: FanOutResult, change: string): string {
  const l = r.latency
  return `${change} reaching ${r.agents} long-polling agents: ${r.informed} had the new current release's .torrent, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ''}; ms from the command's start: p50 ${l.p50.toFixed(0)}, p90 ${l.p90.toFixed(0)}, p99 ${l.p99.toFixed(0)}, max ${l.max.toFixed(0)}`
}

function escape(bytes: Buffer): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
}

function summarize(latencies: number[], errors: number, firstError: string | undefined): KindStats {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
  return { requests: sorted.length + errors, errors, ...(firstError ? { firstError } : {}), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1) ?? 0 }
}

/** One table, one row per kind. */
export function formatLoad(result: LoadResult, options: LoadOptions): string {
  const row = (kind: string, s: KindStats) =>
    `${kind.padEnd(9)} ${String(s.requests).padStart(8)} ${((s.errors / Math.max(1, s.requests)) * 100).toFixed(2).padStart(7)}% ${[s.p50, s.p90, s.p99, s.max].map((v) => v.toFixed(1).padStart(8)).join(' ')}${s.firstError ? `  first error: ${s.firstError}` : ''}`
  return [
    `${options.agents} simulated agents for ${options.durationMs / 1000} s: poll every ${options.pollEveryMs / 1000} s, announce every ${options.announceEveryMs / 1000} s`,
    `kind      requests  errors      p50      p90      p99      max (ms)`,
    row('manifest', result.poll),
    row('announce', result.announce),
    `manifest answers 304 Not Modified: ${result.notModified}`,
  ].join('\n')
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      agents: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '60' },
      poll: { type: 'string', default: '10' },
      announce: { type: 'string', default: '30' },
      'fan-out': { type: 'string', default: '0' },
    },
  })
  const fanOut = Number(values['fan-out'])
  if (!Number.isInteger(fanOut) || fanOut < 0) {
    console.error(`bench:load: bad --fan-out "${values['fan-out']}": want a number of agents, e.g. 2000`)
    process.exit(2)
  }
  if (fanOut > 0 && values.server) {
    console.error('bench:load: --fan-out publishes a release: it needs the bench\'s own server, not --server')
    process.exit(2)
  }
  const { Daemon } = await import('../test/helpers/processes.ts')
  const { publishRelease, startServerProcess } = await import('../test/helpers/fleet.ts')
  let root: string | undefined
  let daemon: InstanceType<typeof Daemon> | undefined
  try {
    let server = values.server
    const token = 'load-token-0123456789abcdef'
    if (!server) {
      root = await mkdtemp(join(tmpdir(), 'rookery-load-'))
      const started = await startServerProcess(root, token)
      daemon = started.server
      server = started.url
      await mkdir(join(root, 'build'))
      await writeFile(join(root, 'build', 'index.html'), 'load test')
      await publishRelease(server, token, join(root, 'build'), 'v1')
    }
    const manifest = (await (await fetch(`${server}/manifest`)).json()) as { apps: Record<string, { releases: Array<{ infohash: string }> }> }
    const infohash = Object.values(manifest.apps)[0]?.releases[0]?.infohash
    if (!infohash) throw new Error(`${server} has no published release to announce`)
    const options: LoadOptions = {
      server,
      infohash,
      agents: Number(values.agents),
      durationMs: Number(values.seconds) * 1000,
      pollEveryMs: Number(values.poll) * 1000,
      announceEveryMs: Number(values.announce) * 1000,
    }
    console.log(formatLoad(await runLoad(options), options))
    if (fanOut > 0 && root) {
      const build = join(root, 'build')
      await writeFile(join(build, 'index.html'), 'load test, v2')
      const change = async () => void (await publishRelease(server, token, build, 'v2'))
      console.log(formatFanOut(await runFanOut({ server, agents: fanOut, tag: 'v2', timeoutMs: 25_000, change }), 'rookery publish v2'))
    }
  } finally {
    await daemon?.stop()
    if (root) await rm(root, { recursive: true, force: true })
  }
}
