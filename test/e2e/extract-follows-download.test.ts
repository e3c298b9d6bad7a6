import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Lab } from '../helpers/faults.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// The agent extracts a release while it downloads (src/agent/install.ts): the tarball arrives front to
// back and the extraction reads it as far as its pieces are verified. With the origin capped at 2 MiB/s,
// an 8 MiB release takes about four seconds to arrive; files must appear in the hidden staging directory
// before the last piece is in, and the release must still become current only whole and checked.

let lab: Lab

before(async () => {
  lab = await Lab.create('e2e-extract-follows')
  await lab.startServer(['origin_upload_limit: 2MiB'])
})

after(() => lab.cleanup())

/** Bytes of regular files under the host's staging directories. */
async function stagedBytes(host: string): Promise<number> {
  let total = 0
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.isFile()) total += await stat(path).then((s) => s.size, () => 0)
    }
  }
  for (const staging of await lab.stagingDirs(host)) await walk(join(lab.deployDir(host), 'releases', staging))
  return total
}

test('files are extracted while the download is still running, and the release becomes current whole', { timeout: 120_000 }, async () => {
  const source = join(lab.root, 'v1')
  await makeReleaseTree(source, 8 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v1: await treeDigest(source) }
  await lab.publish('v1', source)

  // The webseed would bypass the origin's cap: only after a minute without swarm data.
  await lab.agentConfig('h', { agent: { webseed_fallback: '1m' } })
  lab.startAgent('h')

  // Sample while the download runs: staged bytes, and whether the agent said the download is complete.
  let before = 0
  const deadline = Date.now() + 60_000
  for (;;) {
    assert.ok(Date.now() < deadline, 'the host did not finish its download within a minute')
    const log = await lab.agentLog('h')
    if (log.some((l) => l.msg === 'download complete')) break
    before = Math.max(before, await stagedBytes('h'))
    assert.equal(await lab.checkCurrent('h', expected), null, 'nothing is current during the download')
    await new Promise((r) => setTimeout(r, 50))
  }
  console.log(`# ${(before / 1024 / 1024).toFixed(1)} MiB extracted before the last piece was in`)
  assert.ok(before >= 2 * 1024 * 1024, `only ${before} bytes were extracted before the download completed`)

  await lab.waitActivated('h', 'v1')
  assert.equal(await lab.checkCurrent('h', expected), 'v1')
  assert.deepEqual(await lab.stagingDirs('h'), [])
  // At 2 MiB/s the network sets the pace, not the disk: the agent says it never waited for its writes.
  const complete = (await lab.agentLog('h')).find((l) => l.msg === 'download complete')
  assert.equal(complete?.disk_wait_ms, 0, 'the download complete line gives the time spent waiting for the disk')
  const extracted = (await lab.agentLog('h')).find((l) => l.msg === 'release extracted')
  console.log(`# extraction finished ${String(extracted?.extract_ms)} ms after the last piece, ${String(extracted?.flush_ms)} ms of it flushing`)
  // Five large files and small ones, beside a tarball as large: each flushed on its own, not the filesystem.
  assert.equal(extracted?.flush, 'each entry')
  assert.ok(typeof extracted?.flush_ms === 'number' && extracted.flush_ms <= Number(extracted.extract_ms), 'flush_ms is part of extract_ms')
  await lab.stopAgents('h')
})
