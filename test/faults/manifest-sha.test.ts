import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Lab } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree } from '../helpers/trees.ts'

// The manifest's SHA-256 for a release disagrees with its tarball while the torrent and every piece are
// valid (the manifest was edited on the server, or the tarball and .torrent were replaced together). The
// swarm delivers a complete, piece-verified file; the SHA-256 checked during extraction refuses it. The
// host must not activate it, must leave nothing in releases/, and must delete the download (a later
// manifest entry for the same torrent starts over instead of resuming those bytes). Bad content is a
// permanent failure: the host does not fetch it again and again.

let lab: Lab

before(async () => {
  lab = await Lab.create('faults-manifest-sha')
  await lab.startServer()
})

after(() => lab.cleanup())

test('a release whose manifest SHA-256 does not match its (piece-valid) tarball is refused and its download deleted', { timeout: 120_000 }, async () => {
  const v1 = join(lab.root, 'v1')
  await makeReleaseTree(v1, 2 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  await lab.publish('v1', v1, { activate: false })

  // Edit the manifest on the server's disk while it is stopped: v1's digest becomes another one.
  await lab.kill(lab.server!)
  const manifestFile = join(lab.root, 'server', 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
  const entry = manifest.apps.web.releases.find((r: { tag: string }) => r.tag === 'v1')
  const truth = entry.sha256 as string
  entry.sha256 = (truth[0] === '0' ? '1' : '0') + truth.slice(1)
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2))
  await lab.restartServer()
  assert.equal((await lab.manifest()).apps.web!.releases.find((r) => r.tag === 'v1')?.sha256, entry.sha256, 'the server serves the edited digest')
  await lab.setCurrent('v1')

  await lab.agentConfig('host', { agent: { stall_timeout: '5s', webseed_fallback: '1s' } })
  lab.startAgent('host')
  const failure = await waitFor('the host to refuse v1', async () => (await lab.state('host')).apps?.web?.failures?.v1, 60_000, 250)

  assert.equal(failure.code, 'ROOKERY_CHECKSUM_MISMATCH', `${failure.code}: ${failure.reason}`)
  assert.match(failure.reason, new RegExp(`has sha256 ${truth}, expected ${entry.sha256}`))
  assert.equal(failure.permanent, true)
  // Polls go on every second (the lab's schedule); none of them tries v1 again.
  await new Promise((r) => setTimeout(r, 4000))
  assert.equal((await lab.state('host')).apps.web.failures.v1.attempts, 1)
  const log = await lab.agentLog('host')
  assert.equal(log.filter((l) => l.msg === 'download complete' && l.tag === 'v1').length, 1, 'the whole file arrived once (the swarm found no bad piece)')
  assert.equal(log.filter((l) => l.msg === 'piece failed verification: a source sent corrupt data').length, 0)
  assert.ok(!log.some((l) => l.tag === 'v1' && ['download verified', 'release extracted', 'current switched'].includes(String(l.msg))))
  assert.equal(await lab.currentTag('host'), null)
  const releases = await readdir(join(lab.deployDir('host'), 'releases')).catch(() => [] as string[])
  assert.deepEqual(releases.filter((e) => e === 'v1' || e.startsWith('.staging-')), [], `releases/ holds ${releases.join(', ')}`)
  const downloads = await readdir(join(lab.stateDir('host'), 'downloads')).catch(() => [] as string[])
  assert.ok(!downloads.includes(entry.infohash), `the refused download is still in ${lab.stateDir('host')}/downloads`)
})
