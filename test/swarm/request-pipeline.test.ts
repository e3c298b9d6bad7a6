import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type WebTorrent from 'webtorrent'
import type { ReleaseTorrent } from '../../src/release/torrent.ts'
import { createSwarmClient, destroySwarmClient, whenListening } from '../../src/swarm/client.ts'
import { seedTorrent, startDownload } from '../../src/swarm/download.ts'
import { requestPipelineLength } from '../../src/swarm/request-pipeline.ts'
import { waitFor } from '../helpers/processes.ts'
import { writeSeedFile } from '../helpers/swarm-clients.ts'

// A seeder capped at 1 MB/s and one downloader on loopback: the downloader's requests outstanding with the
// seeder, sampled every few milliseconds, follow request_pipeline (1 block plus that many seconds of the
// seeder's rate: 8 at 0.1 s, 63 at 1 s), and the file arrives whole either way.

const MB = 1_000_000
const CONTENT = randomBytes(3 * 1024 * 1024)
let tmp = ''
let release: ReleaseTorrent
let seeder: WebTorrent

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-pipeline-'))
  // The downloader is pointed at the seeder directly.
  release = await writeSeedFile(join(tmp, 'seed'), 'app-v1.tar.gz', CONTENT)
  seeder = createSwarmClient({ torrentPort: 0, uploadLimit: MB })
  await whenListening(seeder, 0)
  await seedTorrent(seeder, release.torrent, join(tmp, 'seed'), { skipVerify: true })
})

after(async () => {
  await destroySwarmClient(seeder)
  await rm(tmp, { recursive: true, force: true })
})

/** Downloads the release with `seconds` of pipeline; returns the most requests ever outstanding with the seeder. */
async function download(seconds: number): Promise<number> {
  const dir = join(tmp, `get-${seconds}`)
  const client = createSwarmClient({ torrentPort: 0, requestPipelineSeconds: seconds })
  await whenListening(client, 0)
  let most = 0
  const sampler = setInterval(() => {
    for (const wire of client.torrents[0]?.wires ?? []) most = Math.max(most, (wire as unknown as { requests: unknown[] }).requests.length)
  }, 2)
  try {
    const done = startDownload(client, release.torrent, { dir, stallTimeoutMs: 20_000 }).then((d) => d.done)
    const torrent = await waitFor('the torrent to be added', () => client.torrents[0], 5000)
    torrent.addPeer(`127.0.0.1:${seeder.torrentPort}`)
    await done
    assert.ok((await readFile(join(dir, 'app-v1.tar.gz'))).equals(CONTENT), 'the file arrived whole')
    return most
  } finally {
    clearInterval(sampler)
    await destroySwarmClient(client)
  }
}

test('requests outstanding per peer follow request_pipeline: 1 block plus that many seconds of its rate', { timeout: 60_000 }, async () => {
  assert.equal(requestPipelineLength(0, 0.1), 1)
  assert.equal(requestPipelineLength(MB, 0.1), 8)
  assert.equal(requestPipelineLength(MB, 1), 63)
  const short = await download(0.1)
  const long = await download(1)
  console.log(`# most requests outstanding: ${short} at 0.1 s, ${long} at 1 s`)
  // The rate estimate lags and overshoots a little around the cap: allow a few blocks above 8.
  assert.ok(short >= 3 && short <= 14, `0.1 s: ${short} requests outstanding`)
  assert.ok(long >= 30, `1 s: ${long} requests outstanding (webtorrent's own sizing)`)
})
