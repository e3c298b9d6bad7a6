import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Daemon, freePort, runRookery, waitFor } from './processes.ts'
import { treeDigest } from './trees.ts'

// A small lab for the fault tests (test/faults): one server on loopback, agents as real processes, and the
// means to kill, restart and inspect them. Everything it starts or creates is undone by cleanup().

export const TOKEN = 'faults-token-0123456789abcdef'

export type LogLine = Record<string, unknown> & { msg?: string }

/** JSON log lines of a file; a last line still being written is skipped instead of failing. */
export async function readLog(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const out: LogLine[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as LogLine)
    } catch {
      // partial line
    }
  }
  return out
}

/** YAML lines for a key -> raw YAML value map, indented. */
function yaml(entries: Record<string, string | undefined>, indent = ''): string[] {
  return Object.entries(entries)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${indent}${k}: ${v}`)
}

export interface AgentOptions {
  /** Top-level agent keys (raw YAML values), merged over the fast test defaults. */
  agent?: Record<string, string | undefined>
  /** Keys of the one app (raw YAML values). */
  app?: Record<string, string | undefined>
  appName?: string
}

/** Whether a process (or, with a negative id, a process group) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Pids of the processes whose process group is `pgid` (from /proc). */
export async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // pid (comm) state ppid pgrp ...: comm may contain spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid) out.push(Number(entry))
  }
  return out
}

export class Lab {
  readonly root: string
  readonly port: number
  readonly url: string
  server: Daemon | undefined
  #serverStarts = 0
  readonly #daemons: Daemon[] = []
  readonly #children: ChildProcess[] = []
  readonly #cleanups: Array<() => Promise<unknown> | unknown> = []
  readonly #starts = new Map<string, number>()

  private constructor(root: string, port: number) {
    this.root = root
    this.port = port
    this.url = `http://127.0.0.1:${port}`
  }

  static async create(name: string): Promise<Lab> {
    const root = await mkdtemp(join(tmpdir(), `rookery-${name}-`))
    return new Lab(root, await freePort())
  }

  /** Registers something to undo at cleanup (after the processes stopped, last-in first-out, before the temp dir goes). */
  onCleanup(fn: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(fn)
  }

  /** Writes server.yaml (test defaults plus `extra` lines) and starts the server; waits for /healthz. */
  async startServer(extra: string[] = []): Promise<Daemon> {
    const config = join(this.root, 'server.yaml')
    await writeFile(
      config,
      [
        `listen: 127.0.0.1:${this.port}`,
        `public_url: ${this.url}`,
        `data_dir: ${join(this.root, 'server')}`,
        `publish_tokens: [${TOKEN}]`,
        'torrent_port: 0',
        'announce_interval: 2s',
        ...extra,
      ].join('\n'),
    )
    return this.restartServer()
  }

  /** Starts the server again with the same config (same data_dir, same port), with a new log file. */
  async restartServer(): Promise<Daemon> {
    const n = ++this.#serverStarts
    const server = new Daemon(['server', '--config', join(this.root, 'server.yaml')], join(this.root, `server.${n}.log`))
    this.#daemons.push(server)
    this.server = server
    await waitFor('the server to answer', () => fetch(`${this.url}/healthz`).then((r) => r.ok, () => false), 30_000, 100)
    return server
  }

  /** `rookery publish`; asserts success and returns stdout. */
  async publish(tag: string, source: string, options: { app?: string; activate?: boolean } = {}): Promise<string> {
    const args = ['publish', source, '--app', options.app ?? 'web', '--tag', tag, '--server', this.url]
    if (options.activate === false) args.push('--no-activate')
    const result = await runRookery(args, { ROOKERY_TOKEN: TOKEN })
    assert.equal(result.code, 0, `publish ${tag} failed: ${result.stderr}`)
    return result.stdout
  }

  async setCurrent(tag: string, app = 'web'): Promise<void> {
    const result = await runRookery(['rollback', '--app', app, '--to', tag, '--server', this.url], { ROOKERY_TOKEN: TOKEN })
    assert.equal(result.code, 0, `rollback to ${tag} failed: ${result.stderr}`)
  }

  async stats(): Promise<{ webseed_bytes: number; origin_seeder_uploaded_bytes: number }> {
    return (await (await fetch(`${this.url}/api/v1/stats`)).json()) as { webseed_bytes: number; origin_seeder_uploaded_bytes: number }
  }

  async manifest(): Promise<{ serial: number; apps: Record<string, { current: string; releases: Array<{ tag: string; size: number; infohash: string; sha256: string }> }> }> {
    return (await fetch(`${this.url}/manifest`)).json() as Promise<any>
  }

  deployDir(host: string): string {
    return join(this.root, host, 'srv', 'web')
  }

  stateDir(host: string): string {
    return join(this.root, host, 'state')
  }

  /** Writes <host>.yaml: fast polling and retries, loopback, one app `web` deployed under <host>/srv/web. */
  async agentConfig(host: string, options: AgentOptions = {}): Promise<string> {
    const file = join(this.root, `${host}.yaml`)
    await mkdir(join(this.root, host), { recursive: true })
    const top = {
      server: this.url,
      state_dir: this.stateDir(host),
      schedule: '"* * * * * *"',
      seed_window: '1m',
      torrent_port: '0',
      stall_timeout: '15s',
      retry_backoff: '1s',
      request_timeout: '2s',
      host_id: host,
      ...options.agent,
    }
    const app = { name: options.appName ?? 'web', deploy_to: this.deployDir(host), ...options.app }
    const [first, ...rest] = yaml(app)
    await writeFile(file, [...yaml(top), 'apps:', `  - ${first}`, ...rest.map((l) => `    ${l}`)].join('\n'))
    return file
  }

  /** Starts `rookery agent` for a host whose config was written; each start gets its own log file. */
  startAgent(host: string): Daemon {
    const n = (this.#starts.get(host) ?? 0) + 1
    this.#starts.set(host, n)
    const agent = new Daemon(['agent', '--config', join(this.root, `${host}.yaml`)], join(this.root, `${host}.${n}.log`))
    this.#daemons.push(agent)
    return agent
  }

  /** Starts another process (e.g. a test tracker) with its output in a log file; killed at cleanup. */
  spawnProcess(args: string[], logFile: string): ChildProcess {
    const out = createWriteStream(logFile)
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.pipe(out)
    child.stderr!.pipe(out)
    this.#children.push(child)
    return child
  }

  /** Log lines of every start of a host's agent, oldest first. */
  async agentLog(host: string): Promise<LogLine[]> {
    const out: LogLine[] = []
    for (let n = 1; n <= (this.#starts.get(host) ?? 0); n++) out.push(...(await readLog(join(this.root, `${host}.${n}.log`))))
    return out
  }

  async serverLog(): Promise<LogLine[]> {
    const out: LogLine[] = []
    for (let n = 1; n <= this.#serverStarts; n++) out.push(...(await readLog(join(this.root, `server.${n}.log`))))
    return out
  }

  /** Waits until a host's agent logged 'release activated' for a tag (state saved, hook done). */
  async waitActivated(host: string, tag: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${host} to activate ${tag}`, async () => (await this.agentLog(host)).some((l) => l.msg === 'release activated' && l.tag === tag), timeoutMs)
  }

  async currentTag(host: string): Promise<string | null> {
    return readlink(join(this.deployDir(host), 'current')).then((t) => t.split('/').at(-1)!, () => null)
  }

  async state(host: string): Promise<any> {
    return JSON.parse(await readFile(join(this.stateDir(host), 'state.json'), 'utf8').catch(() => '{}'))
  }

  async stagingDirs(host: string): Promise<string[]> {
    return (await readdir(join(this.deployDir(host), 'releases')).catch(() => [] as string[])).filter((e) => e.startsWith('.staging-'))
  }

  /**
   * The invariant: `current` is absent, or points at a complete release whose files equal `expected[tag]`.
   * Returns the tag (or null); throws when current points at anything else.
   */
  async checkCurrent(host: string, expected: Record<string, Record<string, string>>): Promise<string | null> {
    const link = join(this.deployDir(host), 'current')
    let target: string
    try {
      target = await readlink(link)
    } catch {
      return null
    }
    const tag = target.split('/').at(-1)!
    assert.ok(expected[tag], `${host}: current points at ${target}, not a known release`)
    let digest: Record<string, string>
    try {
      digest = await treeDigest(link)
    } catch (err) {
      // current was switched between readlink and the walk (e.g. a hook failed and the previous came back)
      if ((await readlink(link).catch(() => null)) !== target) return this.checkCurrent(host, expected)
      throw err
    }
    if ((await readlink(link).catch(() => null)) !== target) return this.checkCurrent(host, expected)
    assert.deepEqual(digest, expected[tag], `${host}: current -> ${target} is not a complete copy of ${tag}`)
    return tag
  }

  /** SIGTERM to every start of a host's agent; asserts they exit cleanly. */
  async stopAgents(host: string): Promise<void> {
    const prefix = join(this.root, `${host}.`)
    for (const d of this.#daemons.filter((d) => d.logFile.startsWith(prefix) && d.logFile.endsWith('.log'))) {
      const killed = d.child.signalCode === 'SIGKILL'
      const code = await d.stop()
      if (!killed) assert.equal(code, 0, `${d.logFile}: the agent did not stop cleanly`)
    }
  }

  /** SIGKILL and wait for the exit. */
  async kill(daemon: Daemon): Promise<void> {
    daemon.child.kill('SIGKILL')
    await daemon.stop()
  }

  /** Stops every process the lab started, then runs the registered cleanups, then removes the temp dir. */
  async cleanup(): Promise<void> {
    await Promise.all(this.#daemons.map((d) => d.stop(5000)))
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGKILL')
        await exited
      }
    }
    for (const fn of this.#cleanups.reverse()) await Promise.resolve().then(fn).catch((err) => console.error('cleanup:', err))
    if (process.env.ROOKERY_KEEP_TEST_DIR) console.log(`test files kept in ${this.root}`)
    else await rm(this.root, { recursive: true, force: true })
  }
}

/** Polls fast (for kills timed on a log line). */
export function waitForFast<T>(what: string, check: () => Promise<T> | T, timeoutMs = 60_000): Promise<NonNullable<T>> {
  return waitFor(what, check, timeoutMs, 10)
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
