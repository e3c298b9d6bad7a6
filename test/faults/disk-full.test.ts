import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { Lab } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The deploy directory's filesystem is full: a 4 MiB tmpfs, a 6 MiB release. The agent reports ENOSPC as a
// transient failure, leaves no staging directory, keeps the previous release current, retries with back-off,
// and succeeds once the filesystem was made bigger.

const run = promisify(execFile)
let lab: Lab
let mounted: string | undefined
// mount(8) needs root (the test machines run the suite as root).
const skip = process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false

before(async () => {
  if (skip) return
  lab = await Lab.create('faults-disk')
  await lab.startServer()
  mounted = lab.deployDir('host')
  await mkdir(mounted, { recursive: true })
  await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mounted])
  // Cleanups run once the agent stopped.
  lab.onCleanup(async () => {
    await run('umount', [mounted!]).catch(() => run('umount', ['-l', mounted!]))
  })
})

after(() => lab?.cleanup())

test('disk full in deploy_to: a clear transient error, no staging left, current kept, retried until it fits', { timeout: 120_000, skip }, async () => {
  const small = join(lab.root, 'small')
  await makeReleaseTree(small, 256 * 1024, '#!/bin/sh\necho ok\n')
  const big = join(lab.root, 'big')
  await makeReleaseTree(big, 6 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v1: await treeDigest(small), v2: await treeDigest(big) }

  await lab.publish('v1', small)
  await lab.agentConfig('host', { app: { post_install: './bin/post-install' } })
  lab.startAgent('host')
  await waitFor('host on v1', async () => (await lab.currentTag('host')) === 'v1', 30_000)

  await lab.publish('v2', big)
  const started = Date.now()
  // Two attempts fail: the second shows the retry (after retry_backoff 1s), still without space.
  const failure = await waitFor('two failed attempts at v2', async () => {
    const f = (await lab.state('host')).apps?.web?.failures?.v2
    return f?.attempts >= 2 ? f : undefined
  }, 60_000, 100)
  console.log(`# second failed attempt ${Date.now() - started} ms after publish`)
  assert.equal(failure.code, 'ROOKERY_EXTRACT_IO')
  assert.match(failure.reason, /ENOSPC/)
  assert.equal(failure.permanent, false)
  assert.ok(Date.parse(failure.retry_after) > Date.parse(failure.at), `retry_after ${failure.retry_after} is not after ${failure.at}`)

  // The agent saves the failure to its state, then logs it: the second line may still be on its way.
  const failed = await waitFor('two "deploy failed" lines for v2', async () => {
    const lines = (await lab.agentLog('host')).filter((l) => l.msg === 'deploy failed' && l.tag === 'v2')
    return lines.length >= 2 ? lines : undefined
  }, 10_000, 100)
  for (const line of failed) {
    assert.equal(line.code, 'ROOKERY_EXTRACT_IO')
    assert.equal(line.permanent, false)
    assert.match(String(line.err), /ENOSPC/)
  }
  // Downloaded once: a retry resumes from the verified tarball it kept and receives nothing.
  const complete = (await lab.agentLog('host')).filter((l) => l.msg === 'download complete' && l.tag === 'v2')
  assert.ok(complete.length >= 2)
  for (const line of complete.slice(1)) assert.equal(Number(line.from_peers) + Number(line.from_webseed), 0, 'a retry downloaded again')
  assert.deepEqual(await lab.stagingDirs('host'), [])
  assert.equal(await lab.checkCurrent('host', expected), 'v1')
  const fs = await statfs(mounted!)
  assert.ok(fs.bavail * fs.bsize > 3 * 1024 * 1024, 'the failed extraction left data on the filesystem')

  await run('mount', ['-o', 'remount,size=64m', mounted!])
  const remounted = Date.now()
  await lab.waitActivated('host', 'v2')
  console.log(`# on v2 ${Date.now() - remounted} ms after the filesystem grew`)
  assert.equal(await lab.checkCurrent('host', expected), 'v2')
  assert.deepEqual(await lab.stagingDirs('host'), [])
  const state = (await lab.state('host')).apps.web
  assert.equal(state.failures.v2, undefined)
  assert.equal(state.previous, 'v1')
})
