import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { runHook } from '../../src/agent/hook.ts'
import type { HookOptions } from '../../src/agent/hook.ts'

let tmp = ''
before(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), 'rookery-hook-')))
})
after(() => rm(tmp, { recursive: true, force: true }))

/** A real pino logger whose JSON lines are collected. */
function captureLogger(): { log: HookOptions['log']; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    },
  })
  return { log: pino({ level: 'info' }, stream), records }
}

async function hook(command: string, options: Partial<HookOptions> = {}) {
  const { log, records } = captureLogger()
  const cwd = options.cwd ?? (await mkdtemp(join(tmp, 'cwd-')))
  const result = await runHook({ command, cwd, env: {}, timeoutMs: 5000, log, ...options })
  return { result, records, cwd }
}

/** State letter of a process from /proc, or undefined when it does not exist. */
async function procState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return undefined
  }
}

/**
 * Whether a process has exited: kill(pid, 0) fails with ESRCH, or it is a zombie (already dead; here
 * pid 1 reaps orphans lazily, and a zombie still answers kill 0).
 */
async function isDead(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true
    throw err
  }
  const state = await procState(pid)
  return state === undefined || state === 'Z' || state === 'X'
}

/** Pids of living (not zombie) processes in a process group. */
async function livingInGroup(pgid: number): Promise<number[]> {
  const living: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') living.push(Number(entry))
  }
  return living
}

async function readPid(file: string): Promise<number> {
  const pid = Number((await readFile(file, 'utf8')).trim())
  assert.ok(Number.isInteger(pid) && pid > 1, `bad pid in ${file}`)
  return pid
}

/** SIGKILL to a process (negative: a process group) that may be gone already. */
function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * Runs a hook that writes its process group id to `cwd`/pgid and a background pid to `cwd`/pid, then
 * reports what is left alive. Should runHook fail to kill the group, a watchdog kills it a few seconds
 * after the timeout, so a regression fails quickly instead of hanging until `sleep 300` ends.
 */
async function hookLeavingChild(command: string, cwd: string, timeoutMs: number) {
  const killGroup = () => readPid(join(cwd, 'pgid')).then((pgid) => kill(-pgid), () => {})
  const watchdog = setTimeout(killGroup, timeoutMs + 3000)
  try {
    const { result } = await hook(command, { cwd, timeoutMs })
    const pid = await readPid(join(cwd, 'pid'))
    const pgid = await readPid(join(cwd, 'pgid'))
    return { result, pid, childDead: await isDead(pid), survivors: await livingInGroup(pgid) }
  } finally {
    clearTimeout(watchdog)
    await killGroup()
  }
}

describe('runHook', () => {
  test('passes env, runs in cwd, logs every line of stdout and stderr', async () => {
    process.env.ROOKERY_HOOK_TEST_OUTER = 'from-agent'
    process.env.ROOKERY_HOOK_TEST_OVERRIDE = 'agent-value'
    try {
      const { result, records, cwd } = await hook(
        'echo "tag=$ROOKERY_TAG"; echo "dir=$(pwd)"; echo "outer=$ROOKERY_HOOK_TEST_OUTER"; echo "override=$ROOKERY_HOOK_TEST_OVERRIDE"; echo oops >&2; printf "no newline"',
        { env: { ROOKERY_TAG: 'v42', ROOKERY_HOOK_TEST_OVERRIDE: 'hook-value' } },
      )
      assert.equal(result.ok, true)
      assert.equal(result.exitCode, 0)
      assert.equal(result.signal, null)
      assert.equal(result.timedOut, false)
      const stdout = ['tag=v42', `dir=${cwd}`, 'outer=from-agent', 'override=hook-value', 'no newline']
      const logged = records.filter((r) => r.msg === 'hook output')
      assert.deepEqual(logged.filter((r) => r.hook === 'stdout').map((r) => r.line), stdout)
      assert.deepEqual(logged.filter((r) => r.hook === 'stderr').map((r) => r.line), ['oops'])
      assert.ok(logged.every((r) => r.level === 30), 'logged at info')
      assert.deepEqual([...result.tail].sort(), [...stdout, 'oops'].sort())
    } finally {
      delete process.env.ROOKERY_HOOK_TEST_OUTER
      delete process.env.ROOKERY_HOOK_TEST_OVERRIDE
    }
  })

  test('a non-zero exit fails with the exit code and the last output', async () => {
    const { result } = await hook('echo one; echo two; exit 3')
    assert.equal(result.ok, false)
    assert.equal(result.exitCode, 3)
    assert.equal(result.timedOut, false)
    assert.deepEqual(result.tail, ['one', 'two'])
  })

  test('the tail keeps the last 20 lines', async () => {
    const { result, records } = await hook('i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; exit 1')
    assert.equal(result.ok, false)
    assert.deepEqual(result.tail, Array.from({ length: 20 }, (_, i) => `line ${i + 11}`))
    assert.equal(records.filter((r) => r.msg === 'hook output').length, 30, 'every line is logged')
  })

  test('a hook killed by a signal fails with the signal', async () => {
    const { result } = await hook('echo before; kill -KILL $$')
    assert.equal(result.ok, false)
    assert.equal(result.exitCode, null)
    assert.equal(result.signal, 'SIGKILL')
    assert.equal(result.timedOut, false)
    assert.deepEqual(result.tail, ['before'])
  })

  test('a hook that cannot start fails without hanging', async () => {
    const { result } = await hook('echo hi', { cwd: join(tmp, 'no-such-dir'), timeoutMs: 2000 })
    assert.equal(result.ok, false)
    assert.equal(result.timedOut, false)
    assert.match(result.tail.at(-1) ?? '', /cannot start hook: .*ENOENT/)
  })

  test('at the timeout the whole process group is killed', async () => {
    const cwd = await mkdtemp(join(tmp, 'group-'))
    const command = 'echo $$ > pgid; sleep 300 & echo $! > pid; echo started; wait'
    const { result, pid, childDead, survivors } = await hookLeavingChild(command, cwd, 700)
    assert.equal(result.ok, false)
    assert.equal(result.timedOut, true)
    assert.equal(result.signal, 'SIGTERM')
    assert.ok(result.durationMs >= 700 && result.durationMs < 3000, `returned after ${result.durationMs} ms (SIGTERM is enough)`)
    assert.deepEqual(result.tail, ['started'])
    assert.equal(childDead, true, `sleep ${pid} still runs`)
    assert.deepEqual(survivors, [], `still running in the group: ${survivors.join(' ')}`)
  })

  test('a hook that exits 0 but leaves a child holding its output ends at the timeout, child killed', async () => {
    const cwd = await mkdtemp(join(tmp, 'stray-'))
    const command = 'echo $$ > pgid; (sleep 300; echo never) & echo $! > pid; echo done; exit 0'
    const { result, pid, childDead, survivors } = await hookLeavingChild(command, cwd, 700)
    assert.equal(result.ok, false, 'the hook did not finish in time')
    assert.equal(result.timedOut, true)
    assert.equal(result.exitCode, 0, 'the shell itself exited 0')
    assert.ok(result.durationMs >= 700 && result.durationMs < 3000, `returned after ${result.durationMs} ms`)
    assert.deepEqual(result.tail, ['done'])
    assert.equal(childDead, true, `subshell ${pid} still runs`)
    assert.deepEqual(survivors, [], `still running in the group: ${survivors.join(' ')}`)
  })

  test('a hook that finishes before the timeout succeeds', async () => {
    const { result } = await hook('sleep 0.2; echo finished', { timeoutMs: 1500 })
    assert.equal(result.ok, true)
    assert.equal(result.timedOut, false)
    assert.deepEqual(result.tail, ['finished'])
    assert.ok(result.durationMs >= 200 && result.durationMs < 1500, `${result.durationMs} ms`)
  })

  const nobody = (() => {
    try {
      return execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).trim().split(':')
    } catch {
      return undefined
    }
  })()
  const canSwitchUser = process.getuid?.() === 0 && nobody !== undefined && nobody.length >= 7

  test('runs as another user with its uid, groups and HOME', { skip: canSwitchUser ? false : 'needs root and a nobody user' }, async () => {
    const [, , uid, gid, , home] = nobody as string[]
    const { result } = await hook('id -u; id -g; echo "home=$HOME"; echo "user=$USER"; echo "tag=$ROOKERY_TAG"', {
      user: 'nobody',
      env: { ROOKERY_TAG: 'v7', HOME: '/root' },
    })
    assert.equal(result.ok, true, result.tail.join('\n'))
    assert.deepEqual(result.tail, [uid, gid, `home=${home}`, 'user=nobody', 'tag=v7'])
  })

  test('an unknown user is an error before anything runs', async () => {
    await assert.rejects(hook('echo hi', { user: 'no-such-user-rookery' }), /hook user no-such-user-rookery does not exist/)
  })
})
