import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { alive, groupMembers, Lab, sleep } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// Hooks that never finish: one that hangs, one that exits 0 but leaves a background child holding its
// stdout open, one that ignores SIGTERM. With hook_timeout 2s the agent kills the hook's whole process
// group, puts the previous release back, and records a permanent failure; nothing of the hook survives.

const HOOK_TIMEOUT_MS = 2000

// Each hook writes "<its process group> <the sleep's pid>" to hook-<tag>.pid in deploy_to. (The group is not
// the script's $$: /bin/sh -c runs the script as a child, the group leader is that sh.)
const OK_HOOK = '#!/bin/sh\necho "ok $ROOKERY_TAG"\n'
const HOOKS: Record<string, { script: string; grace: number }> = {
  // Hangs in the foreground.
  v1: { script: '#!/bin/sh\nsleep 600 &\nread -r _ _ _ _ pgid _ < /proc/$$/stat\necho "$pgid $!" >> "$ROOKERY_DEPLOY_TO/hook-$ROOKERY_TAG.pid"\necho "hanging"\nwait $!\n', grace: 0 },
  // Exits 0 at once, but its background child keeps the hook's stdout open.
  v2: { script: '#!/bin/sh\n(exec sleep 600) &\nread -r _ _ _ _ pgid _ < /proc/$$/stat\necho "$pgid $!" >> "$ROOKERY_DEPLOY_TO/hook-$ROOKERY_TAG.pid"\necho "started a daemon"\nexit 0\n', grace: 0 },
  // Ignores SIGTERM (and so does its sleep, which inherits the ignored signal): only SIGKILL ends it, 5 s later.
  v3: { script: "#!/bin/sh\ntrap '' TERM\nsleep 600 &\nread -r _ _ _ _ pgid _ < /proc/$$/stat\necho \"$pgid $!\" >> \"$ROOKERY_DEPLOY_TO/hook-$ROOKERY_TAG.pid\"\necho \"deaf to SIGTERM\"\nwait $!\n", grace: 5000 },
}

let lab: Lab
const hookPids: number[] = []

before(async () => {
  lab = await Lab.create('faults-hooks')
  await lab.startServer()
})

after(async () => {
  // Whatever the outcome, no sleep of these hooks outlives the test.
  for (const pid of hookPids) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  await lab.cleanup()
})

async function readPids(tag: string): Promise<{ pgid: number; sleep: number } | undefined> {
  const text = await readFile(join(lab.deployDir('host'), `hook-${tag}.pid`), 'utf8').catch(() => '')
  const [pgid, sleepPid] = (text.split('\n')[0] ?? '').split(' ').map(Number)
  if (!pgid || !sleepPid) return undefined
  hookPids.push(pgid, sleepPid)
  return { pgid, sleep: sleepPid }
}

test('hooks that hang or hold their output open are killed as a group at hook_timeout; the previous release comes back', { timeout: 120_000 }, async () => {
  const source = join(lab.root, 'source')
  await makeReleaseTree(source, 512 * 1024, OK_HOOK)
  await lab.publish('v0', source)
  const expected: Record<string, Record<string, string>> = { v0: await treeDigest(source) }

  await lab.agentConfig('host', { app: { post_install: './bin/post-install', hook_timeout: `${HOOK_TIMEOUT_MS}ms` } })
  const agent = lab.startAgent('host')
  await waitFor('host on v0', async () => (await lab.currentTag('host')) === 'v0', 30_000)

  for (const [tag, hook] of Object.entries(HOOKS)) {
    await writeFile(join(source, 'bin', 'post-install'), hook.script)
    expected[tag] = await treeDigest(source)
    const published = Date.now()
    await lab.publish(tag, source)

    const pids = await waitFor(`the ${tag} hook to start`, () => readPids(tag), 30_000, 50)
    assert.ok(alive(pids.sleep), `the ${tag} hook's sleep is not running`)
    assert.ok((await groupMembers(pids.pgid)).includes(pids.sleep), `${pids.pgid} is not the ${tag} hook's process group`)
    const failure = await waitFor(
      `the ${tag} failure to be recorded`,
      async () => (await lab.state('host')).apps?.web?.failures?.[tag],
      HOOK_TIMEOUT_MS + hook.grace + 30_000,
      100,
    )
    const took = Date.now() - published
    console.log(`# ${tag}: failure recorded ${took} ms after publish`)
    assert.equal(failure.code, 'ROOKERY_HOOK_FAILED')
    assert.equal(failure.permanent, true)
    assert.equal(failure.retry_after, undefined)
    assert.match(failure.reason, new RegExp(`timed out after ${HOOK_TIMEOUT_MS} ms.*back on v0`))
    assert.equal(await lab.checkCurrent('host', expected), 'v0')
    assert.equal((await lab.state('host')).apps.web.activating, undefined)

    // The whole group is gone: the shell, the sleep, anything else it started.
    await waitFor(`the ${tag} hook's group to be gone`, async () => (await groupMembers(pids.pgid)).length === 0 && !alive(pids.sleep), 3000, 100)

    // Not retried at the next polls.
    await sleep(2500)
    assert.equal(await readFile(join(lab.deployDir('host'), `hook-${tag}.pid`), 'utf8').then((t) => t.trim().split('\n').length), 1)
    const log = await lab.agentLog('host')
    const switched = log.filter((l) => l.msg === 'current switched' && l.tag === tag)
    assert.equal(switched.length, 1, `the ${tag} activation was retried`)
    assert.ok(log.some((l) => l.msg === 'hook output' && l.tag === tag), `no output of the ${tag} hook in the log`)
    // Killed at the timeout (plus the SIGKILL grace for the one ignoring SIGTERM), not before, not much later.
    const failedAt = Date.parse(String(log.find((l) => l.msg === 'deploy failed' && l.tag === tag)!.time))
    const hookMs = failedAt - Date.parse(String(switched[0]!.time))
    assert.ok(hookMs >= HOOK_TIMEOUT_MS + hook.grace - 100 && hookMs < HOOK_TIMEOUT_MS + hook.grace + 3000, `the ${tag} hook ended after ${hookMs} ms`)
    assert.equal(await lab.currentTag('host'), 'v0')
  }

  const failed = (await lab.agentLog('host')).filter((l) => l.msg === 'deploy failed')
  assert.deepEqual(failed.map((l) => [l.tag, l.code, l.permanent]), Object.keys(HOOKS).map((t) => [t, 'ROOKERY_HOOK_FAILED', true]))
  assert.equal(await agent.stop(), 0)
})
