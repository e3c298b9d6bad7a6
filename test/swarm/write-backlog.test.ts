import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type WebTorrent from 'webtorrent'
import type { ReleaseTorrent } from '../../src/release/torrent.ts'
import { seedTorrent, startDownload } from '../../src/swarm/download.ts'
import { writeBacklog } from '../../src/swarm/write-backlog.ts'
import { waitFor } from '../helpers/processes.ts'
import { SwarmClients, writeSeedFile } from '../helpers/swarm-clients.ts'

// A seeder on loopback and a downloader whose disk is slower than the network: its store writes one piece
// at a time, each taking WRITE_MS (about 13 MB/s). Without a limit the verified pieces waiting for their
// write pile up to most of the release; with one, the download asks for no more blocks while over it, and
// the file still arrives whole.

const KiB = 1024
const MiB = 1024 * KiB
const PIECE = 256 * KiB
const CONTENT = randomBytes(24 * MiB)
const WRITE_MS = 20
const NAME = 'app-v1.tar.gz'

let tmp = ''
let release: ReleaseTorrent
let seeder: WebTorrent
const clients = new SwarmClients()

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-write-backlog-'))
  // The downloader is pointed at the seeder directly.
  release = await writeSeedFile(join(tmp, 'seed'), NAME, CONTENT, { pieceLength: PIECE })
  seeder = await clients.create()
  await seedTorrent(seeder, release.torrent, join(tmp, 'seed'), { skipVerify: true })
})

after(async () => {
  await clients.destroyAll()
  await rm(tmp, { recursive: true, force: true })
})

/** Downloads the release onto a slow disk with `writeBacklogBytes`: the largest backlog seen, and the time held. */
async function downloadToSlowDisk(dirName: string, writeBacklogBytes: number): Promise<{ most: number; heldMs: number }> {
  const client = await clients.create()
  const dir = join(tmp, dirName)
  const download = await startDownload(client, release.torrent, { dir, stallTimeoutMs: 30_000, writeBacklogBytes })
  const torrent = download.torrent
  // The slow disk, under the backlog's count: webtorrent's store (immediate-chunk-store) wraps a cache
  // that wraps the file store; the cache's writes are queued and each one takes WRITE_MS longer.
  const inner = await waitFor('the torrent store', () => (torrent as unknown as { store?: { store: ChunkStore } | null }).store?.store, 5000)
  const put = inner.put.bind(inner)
  let queue = Promise.resolve()
  inner.put = (index, buf, cb) => {
    queue = queue.then(() => new Promise<void>((resolve) => setTimeout(() => put(index, buf, (err) => {
      resolve()
      cb?.(err)
    }), WRITE_MS)))
  }
  let most = 0
  const sampler = setInterval(() => (most = Math.max(most, writeBacklog(torrent))), 2)
  try {
    torrent.addPeer(`127.0.0.1:${seeder.torrentPort}`)
    await download.done
    assert.ok((await readFile(join(dir, NAME))).equals(CONTENT), 'the file arrived whole')
    return { most, heldMs: download.traffic().heldForDiskMs }
  } finally {
    clearInterval(sampler)
  }
}

test('a download onto a disk slower than the network holds its requests while its unwritten pieces pass the limit', { timeout: 60_000 }, async () => {
  const unlimited = await downloadToSlowDisk('unlimited', Infinity)
  const limited = await downloadToSlowDisk('limited', 2 * MiB)
  console.log(`# largest backlog of unwritten pieces: ${(unlimited.most / MiB).toFixed(1)} MiB without a limit, ${(limited.most / MiB).toFixed(1)} MiB with a 2 MiB limit (held ${limited.heldMs} ms)`)
  // Without a limit the network outruns the writes: most of the release waits in memory.
  assert.ok(unlimited.most > 12 * MiB, `without a limit the backlog reached only ${unlimited.most} bytes: the disk kept up, so this test shows nothing`)
  assert.equal(unlimited.heldMs, 0, 'nothing is held without a limit')
  // With one: the limit, plus the blocks already asked for when it was reached (a request pipeline: 1.3-1.5
  // MiB in runs here).
  assert.ok(limited.most <= 6 * MiB, `with a 2 MiB limit the backlog reached ${limited.most} bytes`)
  // 96 pieces at WRITE_MS each take about 2 s to write: the download waited for the disk most of that time,
  // and says so (the agent logs it as disk_wait_ms).
  assert.ok(limited.heldMs >= 500, `held for the disk ${limited.heldMs} ms`)
})

interface ChunkStore {
  put(index: number, buf: Uint8Array, cb?: (err?: Error | null) => void): void
}
