import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import parseTorrent from 'parse-torrent'
import { Lab, readLog } from '../helpers/faults.ts'
import { waitFor } from '../helpers/processes.ts'
import { makeReleaseTree, treeDigest } from '../helpers/trees.ts'

// A peer in the swarm serves corrupt pieces: same torrent, every piece of its copy damaged, announced to the
// server's tracker before the hosts start. The hosts reject its pieces (SHA-1 per piece), still finish from
// the good sources (the origin seeder, capped so the fast bad peer gets asked, each other, the webseed), and
// end with byte-identical releases.

const CORRUPT_PEER = fileURLToPath(new URL('../helpers/corrupt-peer.ts', import.meta.url))
const HOSTS = ['host0', 'host1']
let lab: Lab

before(async () => {
  lab = await Lab.create('faults-corrupt-peer')
  await lab.startServer(['origin_upload_limit: 1MiB'])
})

after(() => lab.cleanup())

test('pieces from a corrupt peer are rejected and the download completes from good sources', { timeout: 120_000 }, async () => {
  const source = join(lab.root, 'source')
  await makeReleaseTree(source, 4 * 1024 * 1024, '#!/bin/sh\necho ok\n')
  const expected = { v1: await treeDigest(source) }
  await lab.publish('v1', source)

  // The corrupt copy: the real tarball with one byte flipped in every piece.
  const torrentFile = join(lab.root, 'server', 'releases', 'web', 'v1', 'web-v1.torrent')
  const torrent = await parseTorrent(await readFile(torrentFile))
  const bad = Buffer.from(await readFile(join(lab.root, 'server', 'releases', 'web', 'v1', 'web-v1.tar.gz')))
  for (let at = 100; at < bad.length; at += torrent.pieceLength!) bad[at]! ^= 0xff
  const badDir = join(lab.root, 'corrupt-peer')
  await mkdir(badDir)
  await writeFile(join(badDir, torrent.name as string), bad)
  const peerLog = join(lab.root, 'corrupt-peer.log')
  lab.spawnProcess([CORRUPT_PEER, torrentFile, badDir], peerLog)
  // The tracker knows two complete copies: the origin's and the corrupt one.
  await waitFor('the corrupt peer to be announced', async () => {
    const stats = (await (await fetch(`${lab.url}/api/v1/stats`)).json()) as { swarms: Array<{ infoHash: string; complete: number }> }
    return stats.swarms.find((s) => s.infoHash === torrent.infoHash)?.complete === 2
  }, 20_000)

  for (const host of HOSTS) {
    await lab.agentConfig(host, { agent: { stall_timeout: '20s', webseed_fallback: '3s' } })
    lab.startAgent(host)
  }
  const started = Date.now()
  await waitFor('every host on v1', async () => (await Promise.all(HOSTS.map((h) => lab.currentTag(h)))).every((t) => t === 'v1'), 60_000)
  console.log(`# 4 MiB to ${HOSTS.length} hosts with a corrupt peer in the swarm: ${Date.now() - started} ms`)

  const uploaded = Math.max(0, ...(await readLog(peerLog)).filter((l) => l.msg === 'uploaded').map((l) => Number(l.uploaded)))
  let rejected = 0
  for (const host of HOSTS) {
    assert.equal(await lab.checkCurrent(host, expected), 'v1')
    const log = await lab.agentLog(host)
    const corrupt = log.filter((l) => l.msg === 'piece failed verification: a source sent corrupt data')
    rejected += corrupt.length
    assert.ok(!log.some((l) => l.msg === 'deploy failed'), `${host} had a failed deploy`)
    const complete = log.find((l) => l.msg === 'download complete')!
    console.log(`# ${host}: ${corrupt.length ? corrupt.at(-1)!.corrupt_pieces : 0} pieces rejected, ${complete.from_peers} bytes from peers, ${complete.from_webseed} from the webseed`)
    // A host that got bad pieces drops the peer that sent them, so the waste stays small.
    if (corrupt.length > 0) assert.ok(log.some((l) => l.msg === 'peer dropped: it sent pieces that failed verification'), `${host} never dropped the corrupt peer`)
    const received = Number(complete.from_peers) + Number(complete.from_webseed)
    assert.ok(received < 3 * 4 * 2 ** 20, `${host} received ${received} bytes for a 4 MiB release`)
  }
  console.log(`# the corrupt peer uploaded ${uploaded} bytes`)
  assert.ok(uploaded > 0, 'the corrupt peer sent nothing: the test did not test anything')
  assert.ok(rejected > 0, 'no host logged a piece that failed verification, yet the corrupt peer sent data')
})
