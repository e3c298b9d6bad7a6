/**
 * Shared pieces of the benchmarks in scripts/bench/: processes pinned to a core, /proc readings, Debian
 * tools, a throw-away work directory and a small table printer. Every benchmark cleans up after itself,
 * also on failure or Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpuTicks, freePort, processTree } from '../../test/helpers/processes.ts'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
export const NODE = process.execPath
export const TOKEN = 'bench-token-0123456789abcdef'
export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** The cores a server and a load generator are pinned to: one each when the machine has two or more. */
export const CORES = cpus().length >= 2 ? { server: '0', load: '1' } : { server: '0', load: '0' }

/** A line saying how busy the machine was: other jobs on the shared cores skew absolute figures. */
export function machineNote(): string {
  const [one] = loadavg()
  return `# machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), load average ${one!.toFixed(2)} at start`
}

const cleanups: Array<() => Promise<void> | void> = []
let cleaning: Promise<void> | undefined

/** Registers something to undo at the end (run in reverse order, once, also on SIGINT/SIGTERM). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn)
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!
      try {
        await fn()
      } catch (err) {
        console.error(`# cleanup: ${(err as Error).message}`)
      }
    }
  })()
  return cleaning
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`# ${signal}: cleaning up`)
    void cleanup().then(() => process.exit(130))
  })
}

/** Runs `main`, then the clean-ups whatever happened; exits 1 on failure. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  try {
    await main()
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? err}`)
    process.exitCode = 1
  } finally {
    await cleanup()
  }
}

/** A temp directory removed at clean-up (unless BENCH_KEEP is set). */
export async function workDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(process.env.BENCH_TMPDIR ?? tmpdir(), `rookery-bench-${name}-`))
  onCleanup(() => (process.env.BENCH_KEEP ? console.log(`# files kept in ${dir}`) : rm(dir, { recursive: true, force: true })))
  return dir
}

export { freePort }

/** A long-running process (optionally pinned with taskset), output to a log file, stopped at clean-up. */
export class Proc {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>

  constructor(argv: string[], logFile: string, opts: { core?: string; env?: Record<string, string>; cwd?: string } = {}) {
    const full = opts.core === undefined ? argv : ['taskset', '-c', opts.core, ...argv]
    const out = createWriteStream(logFile)
    this.child = spawn(full[0]!, full.slice(1), { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.pipe(out)
    this.child.stderr!.pipe(out)
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
    onCleanup(() => this.stop())
  }

  get pid(): number {
    return this.child.pid!
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

/** Runs a command to completion (optionally pinned); throws with its output when it fails. */
export function run(argv: string[], opts: { core?: string; cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): { stdout: string; stderr: string; ms: number } {
  const full = opts.core === undefined ? argv : ['taskset', '-c', opts.core, ...argv]
  const started = performance.now()
  const r = spawnSync(full[0]!, full.slice(1), { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8', maxBuffer: 64 * MiB, timeout: opts.timeoutMs ?? 1_800_000 })
  const ms = performance.now() - started
  if (r.status !== 0) throw new Error(`${full.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`)
  return { stdout: r.stdout, stderr: r.stderr, ms }
}

/** Polls `check` until truthy, or throws naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await Promise.resolve().then(check).catch(() => undefined as T)
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

/**
 * Makes sure the Debian tools (command -> package) are there; as root, installs the missing ones with one
 * `apt-get update` and one `apt-get install`, else fails naming them.
 */
export function ensureDebianTools(tools: Record<string, string>): void {
  let missing = Object.entries(tools).filter(([cmd]) => !has(cmd))
  if (missing.length > 0 && process.getuid?.() === 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))]
    console.log(`# installing ${pkgs.join(' ')} with apt-get`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env })
    missing = missing.filter(([cmd]) => !has(cmd))
  }
  if (missing.length > 0) throw new Error(`missing ${missing.map(([c, p]) => `${c} (Debian package ${p})`).join(', ')}: install them and rerun`)
}

/** VmRSS, VmHWM, RssAnon (heap and stacks) and RssFile (mapped files: the node binary) of a process in bytes, from /proc/<pid>/status. */
export async function memory(pid: number): Promise<{ rss: number; hwm: number; anon: number; file: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') }
}

/**
 * Memory of a process and its descendants (the agent and its swarm process): summed RSS, which counts
 * the node binary's pages once per process, and summed PSS (from smaps_rollup), which shares them out.
 */
export async function treeMemory(pid: number): Promise<{ rss: number; pss: number; anon: number; file: number; processes: number }> {
  const total = { rss: 0, pss: 0, anon: 0, file: 0, processes: 0 }
  for (const member of processTree(pid)) {
    try {
      const m = await memory(member)
      const rollup = await readFile(`/proc/${member}/smaps_rollup`, 'utf8')
      total.pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024
      total.rss += m.rss
      total.anon += m.anon
      total.file += m.file
      total.processes++
    } catch {
      // exited between the listing and the read
    }
  }
  return total
}

/** CPU seconds of a process, its live descendants and the children it has reaped. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let ticks = 0
  for (const member of processTree(pid)) {
    try {
      ticks += cpuTicks(member, true)
    } catch {
      // exited between the listing and the read
    }
  }
  return ticks / CLK_TCK
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** utime + stime of a process in seconds, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  return cpuTicks(pid) / CLK_TCK
}

/** Prints rows as an aligned table; the first row is the header. */
export function printTable(rows: Array<Array<string | number>>): void {
  const cells = rows.map((r) => r.map(String))
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  console.log(line(cells[0]!))
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`)
  for (const r of cells.slice(1)) console.log(line(r))
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/** A `rookery server` on a loopback port, optionally pinned, with its config and data under `dir`. */
export async function startServer(dir: string, opts: { core?: string; extra?: string[]; torrentPort?: number } = {}): Promise<{ proc: Proc; url: string; port: number }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = join(dir, 'server.yaml')
  await mkdir(dir, { recursive: true })
  await writeFile(config, [`listen: 127.0.0.1:${port}`, `public_url: ${url}`, `data_dir: ${join(dir, 'server')}`, `publish_tokens: [${TOKEN}]`, `torrent_port: ${opts.torrentPort ?? 0}`, ...(opts.extra ?? [])].join('\n'))
  const proc = new Proc([NODE, MAIN, 'server', '--config', config], join(dir, 'server.log'), { core: opts.core })
  await waitFor('the rookery server to answer', () => !proc.running || fetch(`${url}/healthz`).then((r) => r.ok), 30_000)
  if (!proc.running) throw new Error(`rookery server exited at start: ${(await readFile(join(dir, 'server.log'), 'utf8')).slice(-2000)}`)
  return { proc, url, port }
}

/** `rookery publish DIR --app APP --tag TAG`; returns the manifest's entry for it. */
export async function publish(url: string, source: string, app: string, tag: string): Promise<{ infohash: string; sha256: string; size: number; torrent_url: string; tarball_url: string }> {
  run([NODE, MAIN, 'publish', source, '--app', app, '--tag', tag, '--server', url], { env: { ROOKERY_TOKEN: TOKEN } })
  const manifest = (await (await fetch(`${url}/manifest`)).json()) as { apps: Record<string, { releases: Array<{ tag: string; infohash: string; sha256: string; size: number; torrent_url: string; tarball_url: string }> }> }
  const entry = manifest.apps[app]?.releases.find((r) => r.tag === tag)
  if (!entry) throw new Error(`${app}/${tag} is not in the manifest after publish`)
  return entry
}

export interface WrkResult {
  rps: number
  p50: string
  p99: string
  /** Non-2xx/3xx answers, socket errors and timeouts, plus what a Lua `response` check counted as bad. */
  errors: number
  /** wrk's own lines about errors, when there were any. */
  errorText: string
}

/** wrk on the load core: one thread, `connections` connections, for `seconds`. */
export function wrk(url: string, opts: { seconds: number; connections: number; headers?: string[]; script?: string }): WrkResult {
  const argv = ['wrk', '-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', ...(opts.headers ?? []).flatMap((h) => ['-H', h])]
  if (opts.script) argv.push('-s', opts.script)
  const { stdout } = run([...argv, url], { core: CORES.load })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1])
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk output:\n${stdout}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const errors =
    Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0) +
    (socket ? Number(socket[1]) + Number(socket[3]) + Number(socket[4]) : 0) +
    Number(/^bad answers: (\d+)/m.exec(stdout)?.[1] ?? 0)
  const errorText = stdout.split('\n').filter((l) => /Socket errors|Non-2xx|^bad answers: [1-9]/.test(l)).map((l) => l.trim()).join('; ')
  return { rps, p50: /^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '?', p99: /^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '?', errors, errorText }
}
