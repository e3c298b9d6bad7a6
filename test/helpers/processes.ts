import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, readdirSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The CLI entry point, run on the same Node as the tests (the pinned Node 24). */
export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))

/** A port that was free a moment ago (the server needs it in its public_url before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `rookery ARGS` to completion, with a time limit. */
export function runRookery(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * A long-running `rookery` daemon whose output goes to a log file the test can read. `command` runs
 * rookery: the sources on this Node by default, or e.g. the staged package's launcher
 * (scripts/staged-package.ts).
 */
export class Daemon {
  readonly child: ChildProcess
  readonly logFile: string
  readonly #exited: Promise<number | null>

  constructor(args: string[], logFile: string, env: Record<string, string> = {}, command: string[] = [process.execPath, MAIN]) {
    this.logFile = logFile
    const out = createWriteStream(logFile)
    const [node, ...rest] = command
    this.child = spawn(node!, [...rest, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.pipe(out)
    this.child.stderr!.pipe(out)
    this.#exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
  }

  /** The JSON log lines written so far. */
  async logLines(): Promise<Array<Record<string, unknown>>> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '')
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  }

  /** SIGTERM, then the exit code (SIGKILL after the grace time). */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    const code = await this.#exited
    clearTimeout(timer)
    return code
  }
}

/** Polls `check` until it returns a truthy value or the time is up (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 60_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** A pid and its descendants' pids, from /proc/<pid>/task/<tid>/children (one that exited has none). */
export function processTree(pid: number): number[] {
  const children: number[] = []
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      children.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
    }
  } catch {
    // exited meanwhile
  }
  return [pid, ...children.flatMap(processTree)]
}

/**
 * CPU time of a process in clock ticks (utime + stime, from /proc/<pid>/stat); with `reaped`, also what
 * the children it has waited for used (cutime + cstime). Throws if the process is gone.
 */
export function cpuTicks(pid: number, reaped = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the parenthesised command name (which may hold spaces); utime is field 14 (1-based).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
  return fields[11]! + fields[12]! + (reaped ? fields[13]! + fields[14]! : 0)
}
