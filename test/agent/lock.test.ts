import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { lockStateDir } from '../../src/agent/lock.ts'
import { RookeryError } from '../../src/errors.ts'

let dir: string
before(async () => (dir = await mkdtemp(join(tmpdir(), 'rookery-lock-'))))
after(() => rm(dir, { recursive: true, force: true }))

test('a second agent on the same state_dir is refused while the first runs; the lock goes with unlock', async () => {
  const sleeper = spawn('sleep', ['30'])
  try {
    await writeFile(join(dir, 'agent.lock'), `${sleeper.pid}\n`)
    await assert.rejects(lockStateDir(dir), (err: unknown) => err instanceof RookeryError && err.code === 'ROOKERY_LOCKED' && err.message.includes(`pid ${sleeper.pid}`))
  } finally {
    sleeper.kill('SIGKILL')
    await new Promise((r) => sleeper.once('exit', r))
  }
  // Its owner is gone: the lock is taken over, and it holds this process's pid until unlocked.
  const unlock = await lockStateDir(dir)
  assert.equal((await readFile(join(dir, 'agent.lock'), 'utf8')).trim(), String(process.pid))
  await unlock()
  await assert.rejects(readFile(join(dir, 'agent.lock')), { code: 'ENOENT' })
})
