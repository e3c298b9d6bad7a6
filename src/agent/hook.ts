import { spawn } from 'node:child_process'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createInterface } from 'node:readline'
import type { Logger } from '../log.ts'

export interface HookOptions {
  command: string
  cwd: string
  env: Record<string, string>
  timeoutMs: number
  /** Run as this user, with that user's groups and HOME. */
  user?: string
  log: Logger
}

export interface HookResult {
  ok: boolean
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  durationMs: number
  /** Last lines of output, for the failure record. */
  tail: string[]
}

const TAIL_LINES = 20
const KILL_GRACE_MS = 5000

/**
 * Runs a post_install command with /bin/sh in its own process group. Each output line goes to the
 * agent's log. The hook is finished when its shell exited and its output closed; at the timeout the whole
 * group gets SIGTERM, then SIGKILL, so a hung hook or a stray child cannot hold the deploy forever.
 */
export async function runHook(options: HookOptions): Promise<HookResult> {
  const started = Date.now()
  const { file, args, env } = await commandFor(options)
  const child = spawn(file, args, { cwd: options.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const tail: string[] = []
  const readLines = (stream: NodeJS.ReadableStream, name: string) =>
    new Promise<void>((resolve) => {
      const lines = createInterface({ input: stream, crlfDelay: Infinity })
      lines.on('line', (line) => {
        options.log.info({ hook: name, line }, 'hook output')
        tail.push(line)
        if (tail.length > TAIL_LINES) tail.shift()
      })
      lines.on('close', resolve)
    })
  const outputClosed = Promise.all([readLines(child.stdout, 'stdout'), readLines(child.stderr, 'stderr')])
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
    child.on('error', (err) => {
      tail.push(`cannot start hook: ${err.message}`)
      resolve({ code: null, signal: null })
    })
  })

  let timedOut = false
  let killTimer: NodeJS.Timeout | undefined
  const timer = setTimeout(() => {
    timedOut = true
    killGroup(child.pid, 'SIGTERM')
    killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS)
  }, options.timeoutMs)

  const [{ code, signal }] = await Promise.all([exited, outputClosed])
  clearTimeout(timer)
  if (killTimer) clearTimeout(killTimer)
  if (timedOut) killGroup(child.pid, 'SIGKILL')
  return { ok: !timedOut && code === 0, exitCode: code, signal, timedOut, durationMs: Date.now() - started, tail }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is already gone
  }
}

const execFileAsync = promisify(execFile)

/**
 * The command line and environment: as the agent's user, or through setpriv as another user with that
 * user's groups (--init-groups) and HOME/USER/LOGNAME, keeping the ROOKERY_* variables.
 */
async function commandFor(options: HookOptions): Promise<{ file: string; args: string[]; env: NodeJS.ProcessEnv }> {
  const env = { ...process.env, ...options.env }
  if (!options.user) return { file: '/bin/sh', args: ['-c', options.command], env }
  const { stdout } = await execFileAsync('getent', ['passwd', options.user]).catch(() => ({ stdout: '' }))
  const fields = stdout.trim().split(':')
  if (fields.length < 7) throw new Error(`hook user ${options.user} does not exist on this host`)
  const [, , uid, gid, , home, shell] = fields as [string, string, string, string, string, string, string]
  return {
    file: 'setpriv',
    args: ['--reuid', uid, '--regid', gid, '--init-groups', '--', '/bin/sh', '-c', options.command],
    env: { ...env, HOME: home, USER: options.user, LOGNAME: options.user, SHELL: shell },
  }
}
