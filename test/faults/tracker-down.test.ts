import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Lab, readLog, sleep } from '../helpers/faults.ts'
import { freePort, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The tracker is a separate process (the server's announce_url points at it) and is down when the hosts
// start. With the webseed out of reach (webseed_fallback 10m), peers from the tracker are the only way to the
// data: nothing moves while it is down, and once it is up the origin seeder (re-announcing every 5 s after a
// failure) and the hosts (every 3 s while stalled) find each other within seconds, not at the next
// 30-minute announce.

const TRACKER = fileURLToPath(new URL('../helpers/tracker-process.ts', import.meta.url))
const HOSTS = ['host0', 'host1']
let lab: Lab
let trackerPort: number

before(async () => {
  lab = await Lab.create('faults-tracker')
  trackerPort = await freePort()
  await lab.startServer([`announce_url: http://127.0.0.1:${trackerPort}/announce`])
})

after(() => lab.cleanup())

test('the tracker is down when the hosts start: downloads start within seconds of it coming back', { timeout: 120_000 }, async () => {
  const source = join(lab.root, 'source')
  await makeReleaseTree(source, 4 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v1: await treeDigest(source) }
  await lab.publish('v1', source)
  const { infohash } = (await lab.manifest()).apps.web!.releases[0]!

  for (const host of HOSTS) {
    await lab.agentConfig(host, { agent: { webseed_fallback: '10m', stall_timeout: '60s' } })
    lab.startAgent(host)
  }
  await waitFor('every host to start downloading', async () => {
    const logs = await Promise.all(HOSTS.map((h) => lab.agentLog(h)))
    return logs.every((log) => log.some((l) => l.msg === 'download started'))
  }, 30_000)
  // Without a tracker nothing moves. (The origin's count is not quite 0 at rest: ~142 bytes right after the
  // publish, from no host. A 16 KiB block is what counts as data.)
  const BLOCK = 16 * 1024
  await sleep(4000)
  assert.ok((await lab.stats()).origin_seeder_uploaded_bytes < BLOCK, 'the origin sent data without a tracker')
  assert.equal((await lab.stats()).webseed_bytes, 0)
  for (const host of HOSTS) assert.equal(await lab.checkCurrent(host, expected), null)

  const trackerLog = join(lab.root, 'tracker.log')
  lab.spawnProcess([TRACKER, String(trackerPort)], trackerLog)
  await waitFor('the tracker to listen', async () => (await readLog(trackerLog)).some((l) => l.msg === 'tracker listening'), 20_000, 50)
  const up = Date.now()
  await waitFor('the origin seeder to send data', async () => (await lab.stats()).origin_seeder_uploaded_bytes >= BLOCK, 30_000, 100)
  const firstData = Date.now() - up
  await waitFor('every host on v1', async () => (await Promise.all(HOSTS.map((h) => lab.currentTag(h)))).every((t) => t === 'v1'), 60_000, 100)
  const allOn = Date.now() - up
  for (const host of HOSTS) await lab.waitActivated(host, 'v1', 10_000)
  console.log(`# tracker up -> first data from the origin: ${firstData} ms; -> every host on v1: ${allOn} ms`)
  // Re-announce delays: 5 s for the seeder, 3 s for the hosts; the default poll interval is 10 s.
  assert.ok(firstData < 10_000, `the first data came ${firstData} ms after the tracker came up`)
  assert.ok(allOn < 15_000, `the hosts were on v1 ${allOn} ms after the tracker came up`)

  for (const host of HOSTS) {
    assert.equal(await lab.checkCurrent(host, expected), 'v1')
    const deploy = (await lab.state(host)).apps.web.last_deploy
    assert.equal(deploy.downloaded_from_webseed, 0)
  }
  // Peers met through the separate tracker only: the seeder and both hosts announced there, nobody used the
  // server's own tracker.
  const peers = new Set((await readLog(trackerLog)).filter((l) => l.msg === 'announce').map((l) => l.addr))
  assert.ok(peers.size >= 1 + HOSTS.length, `${peers.size} peers announced to the tracker`)
  const swarms = ((await (await fetch(`${lab.url}/api/v1/stats`)).json()) as { swarms: Array<{ infoHash: string }> }).swarms
  assert.ok(!swarms.some((s) => s.infoHash === infohash), 'the server tracker was used')
})
