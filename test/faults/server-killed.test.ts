import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Lab, sleep, waitForFast } from '../helpers/faults.ts'
import { runRookery, waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The server (tracker, webseed and origin seeder in one process) is SIGKILLed while three hosts download. The
// hosts keep what they have and trade among themselves, and finish once the server is back (same data_dir,
// same port). The restarted server has its manifest, its tokens and its seeding back: a host that starts
// afterwards, with the webseed out of reach, gets the release from the origin seeder alone.

const HOSTS = ['host0', 'host1', 'host2']
let lab: Lab

before(async () => {
  lab = await Lab.create('faults-server-kill')
  // The origin is capped: the transfer is still running when the server dies.
  await lab.startServer(['origin_upload_limit: 2MiB'])
})

after(() => lab.cleanup())

test('the server is killed mid-transfer: hosts finish after it comes back, and it has its state back', { timeout: 150_000 }, async () => {
  const source = join(lab.root, 'source')
  await makeReleaseTree(source, 8 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v1: await treeDigest(source) }
  // The hosts are up before the publish, so they all start downloading at about the same time.
  for (const host of HOSTS) {
    await lab.agentConfig(host, { agent: { webseed_fallback: '3s', stall_timeout: '30s' } })
    lab.startAgent(host)
  }
  await waitFor('every host to poll', async () => {
    return (await Promise.all(HOSTS.map(async (h) => (await lab.agentLog(h)).some((l) => l.msg === 'agent started')))).every(Boolean)
  }, 30_000)
  await lab.publish('v1', source)
  const manifestBefore = await lab.manifest()
  const etag = async () => (await fetch(`${lab.url}/manifest`)).headers.get('etag')
  const etagBefore = await etag()
  assert.ok(etagBefore)
  const size = manifestBefore.apps.web!.releases[0]!.size

  const downloading = async (host: string) => (await lab.agentLog(host)).some((l) => l.msg === 'download started')
  await waitForFast('every host downloading, a quarter of the release sent by the origin', async () => {
    return (await Promise.all(HOSTS.map(downloading))).every(Boolean) && (await lab.stats()).origin_seeder_uploaded_bytes > size / 4
  }, 60_000)
  const sent = (await lab.stats()).origin_seeder_uploaded_bytes
  await lab.kill(lab.server!)
  const killedAt = Date.now()
  console.log(`# server killed after the origin sent ${sent} bytes of ${size}`)
  assert.ok(sent < size * 0.75, `the origin had sent ${sent} of ${size} bytes when the hosts were all downloading: too late to test anything`)
  assert.deepEqual(await Promise.all(HOSTS.map((h) => lab.currentTag(h))), [null, null, null], 'a host finished before the kill')

  // While the server is down, no host can finish (together they have less than the whole) nor end up on a
  // partial release.
  await sleep(4000)
  for (const host of HOSTS) assert.equal(await lab.checkCurrent(host, expected), null)

  await lab.restartServer()
  const restartedAt = Date.now()
  await waitFor('every host on v1', async () => {
    for (const host of HOSTS) await lab.checkCurrent(host, expected)
    return (await Promise.all(HOSTS.map((h) => lab.currentTag(h)))).every((t) => t === 'v1')
  }, 90_000, 250)
  console.log(`# every host on v1 ${Date.now() - restartedAt} ms after the restart (server down ${restartedAt - killedAt} ms)`)
  const restartedStats = await lab.stats()
  console.log(`# after the restart the server sent ${restartedStats.origin_seeder_uploaded_bytes} bytes (origin) + ${restartedStats.webseed_bytes} (webseed) for 3 x ${size}`)
  for (const host of HOSTS) {
    assert.equal(await lab.checkCurrent(host, expected), 'v1')
    assert.deepEqual(await lab.stagingDirs(host), [])
    const failures = (await lab.state(host)).apps.web.failures
    assert.equal(failures.v1, undefined)
  }

  // The manifest is back as it was, ETag included.
  assert.deepEqual(await lab.manifest(), manifestBefore)
  assert.equal(await etag(), etagBefore)
  // The tokens are back: the same token publishes, another one is refused.
  const wrong = await runRookery(['publish', source, '--app', 'web', '--tag', 'v2', '--server', lab.url], { ROOKERY_TOKEN: 'not-the-token-0123456789' })
  assert.equal(wrong.code, 4, wrong.stderr)
  await lab.publish('v2', source, { activate: false })
  assert.deepEqual((await lab.manifest()).apps.web!.releases.map((r) => r.tag).sort(), ['v1', 'v2'])
  assert.equal((await lab.manifest()).apps.web!.current, 'v1')

  // The seeding is back: with the other hosts gone and the webseed out of reach for this host, the release
  // can only come from the origin seeder of the restarted server.
  for (const host of HOSTS) await lab.stopAgents(host)
  const webseedBefore = (await lab.stats()).webseed_bytes
  await lab.agentConfig('late', { agent: { webseed_fallback: '10m', stall_timeout: '30s' } })
  lab.startAgent('late')
  const lateStarted = Date.now()
  const deploy = await waitFor('the late host on v1', async () => (await lab.state('late')).apps?.web?.last_deploy, 60_000)
  console.log(`# late host on v1 in ${Date.now() - lateStarted} ms`)
  assert.equal(deploy.tag, 'v1')
  assert.equal(await lab.checkCurrent('late', expected), 'v1')
  assert.equal(deploy.downloaded_from_webseed, 0)
  assert.ok(deploy.downloaded_from_peers >= size, `the late host received ${deploy.downloaded_from_peers} of ${size} bytes from peers`)
  const stats = await lab.stats()
  assert.equal(stats.webseed_bytes, webseedBefore)
  assert.ok(stats.origin_seeder_uploaded_bytes - restartedStats.origin_seeder_uploaded_bytes >= size, 'the origin seeder did not send the release')
})
