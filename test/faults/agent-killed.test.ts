import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import parseTorrent from 'parse-torrent'
import { alive, groupMembers, Lab, readLog, sleep, waitForFast } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// An agent is SIGKILLed during the download, during the extraction and during the hook, then started again.
// Each time it converges, `current` never points at a partial release (checked continuously, right after the
// kill and at the end), no staging directory is left, and an interrupted hook is run again to completion.

const RELEASE_BYTES = 6 * 1024 * 1024
// Runs in the release directory; `slow` makes it last a few seconds. Records its process group (not $$: the
// group leader is the /bin/sh -c that runs the script) and, at the end, "<tag>|<previous tag>" in deploy_to.
const HOOK = `#!/bin/sh
read -r _ _ _ _ pgid _ < /proc/$$/stat
echo $pgid >> "$ROOKERY_DEPLOY_TO/hook.pids"
echo "hook start $ROOKERY_TAG"
if [ "$1" = slow ]; then sleep 3; fi
echo "$ROOKERY_TAG|$ROOKERY_PREVIOUS_TAG" >> "$ROOKERY_DEPLOY_TO/hook.done"
echo "hook end"
`

let lab: Lab
let source: string
let expected: Record<string, Record<string, string>>
let size: number
const hookGroups: number[] = []
const watchers = new Set<() => Promise<number>>()

before(async () => {
  lab = await Lab.create('faults-agent-kill')
  // The origin is the only source (webseed_fallback is long): capped, a download lasts about 3 s.
  await lab.startServer(['origin_upload_limit: 2MiB'])
  source = join(lab.root, 'source')
  await makeReleaseTree(source, RELEASE_BYTES, HOOK)
  // Many small files make the extraction last long enough to be interrupted.
  await mkdir(join(source, 'many'))
  await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(source, 'many', `f${i}.txt`), `file ${i}\n`.repeat(20))))
  expected = { v1: await treeDigest(source) }
  await lab.publish('v1', source)
  size = (await lab.manifest()).apps.web!.releases[0]!.size
})

after(async () => {
  for (const stop of watchers) await stop().catch(() => undefined)
  for (const pgid of hookGroups) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {}
  }
  await lab.cleanup()
})

/** Pieces of a partial download that are on disk and pass their SHA-1. */
async function piecesOnDisk(torrentFile: string, file: string): Promise<{ pieces: number; pieceLength: number; valid: number; validBytes: number }> {
  const torrent = await parseTorrent(await readFile(torrentFile))
  const data = await readFile(file).catch(() => Buffer.alloc(0))
  const hashes = torrent.pieces as string[]
  let valid = 0
  let validBytes = 0
  for (const [i, hash] of hashes.entries()) {
    const piece = data.subarray(i * torrent.pieceLength!, Math.min((i + 1) * torrent.pieceLength!, torrent.length!))
    if (piece.length > 0 && createHash('sha1').update(piece).digest('hex') === hash) {
      valid++
      validBytes += piece.length
    }
  }
  return { pieces: hashes.length, pieceLength: torrent.pieceLength!, valid, validBytes }
}

/** Checks the invariant on a host every 50 ms until stopped; the returned function stops and asserts. */
function watchCurrent(host: string): () => Promise<number> {
  let stopped = false
  let checks = 0
  const errors: unknown[] = []
  const loop = (async () => {
    while (!stopped) {
      try {
        await lab.checkCurrent(host, expected)
        checks++
      } catch (err) {
        errors.push(err)
      }
      await sleep(50)
    }
  })()
  const stop = async () => {
    watchers.delete(stop)
    stopped = true
    await loop
    if (errors.length > 0) throw errors[0]
    return checks
  }
  watchers.add(stop)
  return stop
}

async function hookFile(host: string, name: string): Promise<string[]> {
  return (await readFile(join(lab.deployDir(host), name), 'utf8').catch(() => '')).split('\n').filter(Boolean)
}

/** After the restart: on v1, complete, no staging, no failure, nothing half-activated, hook run once to the end. */
async function assertConverged(host: string, hookRuns: number): Promise<void> {
  assert.equal(await lab.checkCurrent(host, expected), 'v1')
  assert.deepEqual(await lab.stagingDirs(host), [])
  assert.deepEqual(await readdir(join(lab.deployDir(host), 'releases')), ['v1'])
  const state = (await lab.state(host)).apps.web
  assert.equal(state.activating, undefined)
  assert.deepEqual(state.failures, {})
  assert.deepEqual(await hookFile(host, 'hook.done'), ['v1|'])
  assert.equal((await hookFile(host, 'hook.pids')).length, hookRuns)
}

test('agent killed during the download: restarts, resumes, converges', { timeout: 90_000 }, async () => {
  const host = 'dl'
  await lab.agentConfig(host, { agent: { webseed_fallback: '10m' }, app: { post_install: './bin/post-install' } })
  const torrentFile = join(lab.root, 'server', 'releases', 'web', 'v1', 'web-v1.torrent')
  const partial = join(lab.stateDir(host), 'downloads', (await lab.manifest()).apps.web!.releases[0]!.infohash, 'web-v1.tar.gz')
  const stopWatch = watchCurrent(host)
  const agent = lab.startAgent(host)
  await waitFor('two pieces on disk', async () => (await piecesOnDisk(torrentFile, partial)).valid >= 2, 30_000, 50)
  await lab.kill(agent)
  const kept = await piecesOnDisk(torrentFile, partial)
  console.log(`# killed with ${kept.valid} of ${kept.pieces} pieces on disk`)
  assert.ok(kept.valid < kept.pieces, 'the download was over before the kill')
  assert.equal(await lab.checkCurrent(host, expected), null)
  // The extraction follows the download in a hidden staging directory, which the next start removes.
  const left = await readdir(join(lab.deployDir(host), 'releases')).catch(() => [] as string[])
  assert.ok(left.every((e) => e.startsWith('.staging-')), `releases/ holds ${left.join(', ')}`)

  lab.startAgent(host)
  await lab.waitActivated(host, 'v1')
  console.log(`# ${await stopWatch()} observations of current, all complete or absent`)
  await assertConverged(host, 1)
  // The second run resumed: it kept the verified pieces of the first (at least two) and received only the
  // missing ones. A block can arrive twice (asked of two peers near the end, or again after a slow peer's
  // request timed out), so up to one piece of duplicates is allowed; a run that did not resume receives the
  // whole file, more than that.
  const complete = (await lab.agentLog(host)).filter((l) => l.msg === 'download complete')
  assert.equal(complete.length, 1)
  const received = Number(complete[0]!.from_peers) + Number(complete[0]!.from_webseed)
  const missing = size - kept.validBytes
  console.log(`# the restarted agent received ${received} of ${size} bytes (${missing} were missing)`)
  assert.ok(received <= missing + kept.pieceLength, `the restarted agent received ${received} bytes, more than the ${missing} missing plus one piece of duplicates`)
  assert.ok(received < size, 'the restarted agent downloaded the whole release again')
  await lab.stopAgents(host)
})

test('agent killed as soon as the download is complete (during the checksummed extraction): restarts, converges', { timeout: 90_000 }, async () => {
  const host = 'ex'
  await lab.agentConfig(host, { agent: { webseed_fallback: '10m' }, app: { post_install: './bin/post-install' } })
  const stopWatch = watchCurrent(host)
  const agent = lab.startAgent(host)
  await waitForFast('download complete', async () => (await lab.agentLog(host)).some((l) => l.msg === 'download complete'), 60_000)
  await lab.kill(agent)
  const releases = await readdir(join(lab.deployDir(host), 'releases')).catch(() => [] as string[])
  const extracted = (await lab.agentLog(host)).some((l) => l.msg === 'release extracted')
  console.log(`# killed with releases/ = [${releases.join(', ')}], extraction ${extracted ? 'finished' : 'not finished'}`)
  assert.equal(await lab.checkCurrent(host, expected), null)
  assert.deepEqual(await hookFile(host, 'hook.pids'), [])

  lab.startAgent(host)
  await lab.waitActivated(host, 'v1')
  console.log(`# ${await stopWatch()} observations of current, all complete or absent`)
  await assertConverged(host, 1)
  await lab.stopAgents(host)
})

test('agent killed during the hook: restarts and redoes the activation, hook run again to completion', { timeout: 90_000 }, async () => {
  const host = 'hk'
  await lab.agentConfig(host, { agent: { webseed_fallback: '10m' }, app: { post_install: '"./bin/post-install slow"' } })
  const stopWatch = watchCurrent(host)
  const agent = lab.startAgent(host)
  await waitForFast('the hook to start', async () => (await lab.agentLog(host)).some((l) => l.msg === 'hook output' && l.line === 'hook start v1'), 60_000)
  const during = (await lab.state(host)).apps.web
  assert.deepEqual(during.activating, { tag: 'v1', previous: null })
  await lab.kill(agent)
  // The host's service going down takes the hook's group with it (systemd kills the whole cgroup).
  const [pgid] = (await hookFile(host, 'hook.pids')).map(Number)
  hookGroups.push(pgid!)
  assert.ok(alive(-pgid!), 'the hook was not running when the agent was killed')
  process.kill(-pgid!, 'SIGKILL')
  await waitFor('the first hook to be gone', async () => (await groupMembers(pgid!)).length === 0, 5000, 50)
  assert.deepEqual(await hookFile(host, 'hook.done'), [])
  // Killed mid-activation: current already points at the complete release, the state says it is not done.
  assert.equal(await lab.checkCurrent(host, expected), 'v1')
  assert.deepEqual((await lab.state(host)).apps.web.activating, { tag: 'v1', previous: null })

  const restarted = lab.startAgent(host)
  await lab.waitActivated(host, 'v1')
  console.log(`# ${await stopWatch()} observations of current, all complete or absent`)
  await assertConverged(host, 2)
  const log = await readLog(restarted.logFile)
  assert.ok(!log.some((l) => l.msg === 'download started'), 'the restarted agent downloaded the release again')
  assert.ok(log.some((l) => l.msg === 'hook output' && l.line === 'hook end'))
  assert.ok(log.some((l) => l.msg === 'release activated' && l.tag === 'v1'))
  await lab.stopAgents(host)
})
