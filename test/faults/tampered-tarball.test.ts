import assert from 'node:assert/strict'
import { open, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import parseTorrent from 'parse-torrent'
import { Lab, sleep } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The tarball on the server is overwritten after publish (same size, some bytes flipped) while the server
// runs. The origin seeder trusts its files without re-hashing and the webseed serves them as they are, so
// every source now sends bad pieces: agents must reject them, never extract or activate the release, and
// record why. A host on the previous release stays on it; a fresh host stays with nothing.

let lab: Lab

before(async () => {
  lab = await Lab.create('faults-tamper')
  await lab.startServer()
})

after(() => lab.cleanup())

test('a tarball tampered with on the server is never activated', { timeout: 120_000 }, async () => {
  const v0 = join(lab.root, 'v0')
  await makeReleaseTree(v0, 256 * 1024, '#!/bin/sh\necho ok\n')
  const v1 = join(lab.root, 'v1')
  await makeReleaseTree(v1, 4 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v0: await treeDigest(v0) }

  await lab.publish('v0', v0)
  const agentOptions = { agent: { stall_timeout: '5s', webseed_fallback: '1s' }, app: { post_install: './bin/post-install' } }
  await lab.agentConfig('old', agentOptions)
  lab.startAgent('old')
  await waitFor('old host on v0', async () => (await lab.currentTag('old')) === 'v0', 30_000)

  // Published without activation, tampered with, then made current: no agent saw the good bytes.
  await lab.publish('v1', v1, { activate: false })
  const tarball = join(lab.root, 'server', 'releases', 'web', 'v1', 'web-v1.tar.gz')
  const torrent = await parseTorrent(await readFile(join(lab.root, 'server', 'releases', 'web', 'v1', 'web-v1.torrent')))
  const size = torrent.length!
  const pieceLength = torrent.pieceLength!
  const pieces = Math.ceil(size / pieceLength)
  const tampered: number[] = []
  const file = await open(tarball, 'r+')
  try {
    for (let piece = 1; piece < pieces; piece += 3) {
      const at = piece * pieceLength + Math.floor(Math.min(pieceLength, size - piece * pieceLength) / 2)
      const byte = Buffer.alloc(1)
      await file.read(byte, 0, 1, at)
      byte[0]! ^= 0xff
      await file.write(byte, 0, 1, at)
      tampered.push(piece)
    }
  } finally {
    await file.close()
  }
  console.log(`# tampered with ${tampered.length} of ${pieces} pieces of ${pieceLength} bytes`)
  await lab.setCurrent('v1')

  await lab.agentConfig('fresh', agentOptions)
  lab.startAgent('fresh')

  // At every observation: old on a complete v0, fresh on nothing, no v1 directory anywhere. (While an
  // attempt downloads, its extraction follows the verified pieces in a hidden .staging- directory.)
  const observe = async (stagingAllowed: boolean) => {
    assert.equal(await lab.checkCurrent('old', expected), 'v0')
    assert.equal(await lab.checkCurrent('fresh', expected), null)
    for (const host of ['old', 'fresh']) {
      const entries = await readdir(join(lab.deployDir(host), 'releases')).catch(() => [] as string[])
      const staging = entries.some((e) => e.startsWith('.staging-'))
      assert.ok(!entries.includes('v1') && (stagingAllowed || !staging), `${host} has ${entries.join(', ')}`)
    }
  }
  const failures = async () => Promise.all(['old', 'fresh'].map(async (h) => (await lab.state(h)).apps?.web?.failures?.v1))
  // Two attempts each: the first failure is recorded, and the retry (after retry_backoff) refuses again.
  const recorded = await waitFor('two refused attempts on both hosts', async () => {
    await observe(true)
    const f = await failures()
    return f.every((x) => x?.attempts >= 2) ? f : undefined
  }, 60_000, 250)

  for (const [i, host] of ['old', 'fresh'].entries()) {
    const failure = recorded[i]
    assert.equal(failure.code, 'ROOKERY_CORRUPT_SOURCE', `${host}: ${failure.code}: ${failure.reason}`)
    assert.match(failure.reason, /pieces failed verification: a source serves corrupt data/)
    assert.equal(failure.permanent, false)
    const log = await lab.agentLog(host)
    const corrupt = log.filter((l) => l.msg === 'piece failed verification: a source sent corrupt data' && l.tag === 'v1')
    assert.ok(corrupt.length > 0, `${host} did not log failed piece verification`)
    for (const line of corrupt) assert.ok(tampered.includes(Number(line.piece)), `${host}: piece ${line.piece} was not tampered with`)
    assert.ok(!log.some((l) => l.tag === 'v1' && (l.msg === 'download verified' || l.msg === 'release extracted' || l.msg === 'current switched')))
  }
  await sleep(1000)
  await observe(true)
  // Stopped (a retry may be under way), the agents leave no staging directory behind.
  await lab.stopAgents('old')
  await lab.stopAgents('fresh')
  await observe(false)
})
