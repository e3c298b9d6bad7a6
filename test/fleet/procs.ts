import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { cpuTicks, processTree } from '../helpers/processes.ts'

/** Every process the test bed started and that has not exited: killed on teardown, Ctrl-C or a crash. */
const live = new Set<ChildProcess>()

/** SIGKILLs every process still running (synchronous, for exit and signal handlers). */
export function killAllSync(): void {
  for (const child of live) child.kill('SIGKILL')
}

// Proxy settings would send curl and aria2 to a proxy outside the namespaces (unreachable anyway: the
// namespaces have no route out); drop them so every client talks to the server address directly.
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key]
  return env
}

/**
 * A process running inside a network namespace (`ip netns exec` execs the command, so the pid is the
 * command's own), its stdout and stderr written to a log file.
 */
export class NsProcess {
  readonly child: ChildProcess
  readonly startedAt = Date.now()
  exitedAt: number | undefined
  readonly exited: Promise<number | null>
  readonly ns: string
  readonly logFile: string

  constructor(ns: string, argv: string[], logFile: string, env: Record<string, string> = {}) {
    this.ns = ns
    this.logFile = logFile
    const fd = openSync(logFile, 'a')
    this.child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: cleanEnv(env), stdio: ['ignore', fd, fd] })
    closeSync(fd)
    live.add(this.child)
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitedAt = Date.now()
        live.delete(this.child)
        resolve(code ?? (signal ? 128 : null))
      })
      this.child.on('error', () => resolve(null))
    })
  }

  get running(): boolean {
    return this.exitedAt === undefined
  }

  /** SIGTERM, SIGKILL after the grace time; resolves with the exit code. */
  async stop(graceMs = 5_000): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }

  #lastUsage: { cpuSeconds: number; peakRssMiB: number } | undefined

  /**
   * CPU seconds used so far (user + system) and peak RSS in MiB, from /proc. Once the process is gone,
   * the last value read (the wait loops read every process often, so short-lived clients are counted).
   */
  usage(): { cpuSeconds: number; peakRssMiB: number } | undefined {
    try {
      // The process and its descendants (an agent's swarm process): CPU with what reaped children used,
      // peak RSS summed over those alive (an upper bound: their peaks need not coincide).
      let ticks = 0
      let hwm = 0
      for (const pid of processTree(this.child.pid!)) {
        ticks += cpuTicks(pid, true)
        hwm += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
      }
      if (this.running) this.#lastUsage = { cpuSeconds: ticks / CLOCK_TICKS, peakRssMiB: hwm / 1024 }
    } catch {
      // exited: keep the last value
    }
    return this.#lastUsage
  }

  /** The JSON log lines written so far (other lines, e.g. a stack trace, are skipped). */
  async jsonLines(): Promise<Array<Record<string, unknown>>> {
    return parseJsonLines(await readFile(this.logFile, 'utf8').catch(() => ''))
  }
}

/** Linux reports process CPU time in clock ticks of 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS = 100

export function parseJsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      // a line cut short by a kill
    }
  }
  return out
}

/** Runs a command inside a namespace to completion, with a time limit; stdout and stderr as strings. */
export function runInNs(ns: string, argv: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d))
    child.stderr!.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * GETs a JSON document from inside a namespace with curl. Tries again for up to `timeoutMs`: with 64
 * hosts on two cores, the server, busy with the rollout's start, did not always answer within one try.
 */
export async function getJsonInNs<T>(ns: string, url: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await runInNs(ns, ['curl', '-sS', '--fail', '--max-time', '10', url], 15_000)
    let problem = res.stderr.trim() || `curl exited with ${res.code}`
    if (res.code === 0) {
      try {
        return JSON.parse(res.stdout) as T
      } catch (err) {
        problem = `the answer is not JSON (${(err as Error).message})`
      }
    }
    if (Date.now() > deadline) throw new Error(`GET ${url} from namespace ${ns} kept failing for ${Math.round(timeoutMs / 1000)} s: ${problem}`)
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** Polls `check` until it returns a truthy value; throws with `what` when the time is up. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs: number, everyMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** An error for a daemon that exited while we waited for it, with the last lines of its log. */
export function exitedError(p: NsProcess, what: string): Error {
  let tail = '(no log)'
  try {
    tail = readFileSync(p.logFile, 'utf8').trim().split('\n').slice(-5).join(' | ')
  } catch {
    // no log written
  }
  return new Error(`${what} exited (code ${p.child.exitCode}) in namespace ${p.ns}; log ${p.logFile}: ${tail}`)
}

/**
 * Totals of the clients' CPU time since `before` (a list of usage() values taken at the phase's start:
 * process start-up is not the phase's work) and their largest peak RSS.
 */
export function clientUsage(procs: NsProcess[], before: Array<{ cpuSeconds: number } | undefined> = []): { cpu_seconds_total: number; cpu_seconds_max: number; peak_rss_mib_max: number } {
  const cpu = procs.map((p, i) => (p.usage()?.cpuSeconds ?? 0) - (before[i]?.cpuSeconds ?? 0))
  return {
    cpu_seconds_total: Math.round(cpu.reduce((a, b) => a + b, 0) * 10) / 10,
    cpu_seconds_max: Math.round(Math.max(0, ...cpu) * 10) / 10,
    peak_rss_mib_max: Math.round(Math.max(0, ...procs.map((p) => p.usage()?.peakRssMiB ?? 0))),
  }
}
